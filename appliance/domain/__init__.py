"""Pure data: dataclasses, enums and state tables. No I/O here."""
