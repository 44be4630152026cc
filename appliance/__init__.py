"""dsnode appliance core: everything but the adapters (no Qt, no CLI)."""

__version__ = "0.1.0"
