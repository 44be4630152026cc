"""The desktop app (PySide6): a thin adapter over :class:`appliance.node.Node`, hosting the node."""
