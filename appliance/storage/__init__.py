"""The encrypted local store: SQLCipher database, key header, key sources, backups.

Typical use::

    store = Store.create(home, passphrase)            # or Store.open(home, passphrase)
    store.db.write(lambda conn: conn.execute(...))    # one transaction on the owner thread
    rows = store.db.read(lambda conn: conn.execute(...).fetchall())
    store.close()
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from appliance.storage.backup import BackupInfo
    from appliance.storage.database import Database, latest_version
    from appliance.storage.kdf import KdfParams, StoreHeader, derive_key, read_header, write_header
    from appliance.storage.keysource import EnvVar, KeyFile, KeySource, Passphrase, SystemdCredential
    from appliance.storage.migrate import MigrationError, execute_all
    from appliance.storage.store import Store

_WHERE = {  # name: its module; imported on first use, so that a submodule (the layout) comes alone
    "BackupInfo": "backup", "Database": "database", "latest_version": "database", "KdfParams": "kdf",
    "StoreHeader": "kdf", "derive_key": "kdf", "read_header": "kdf", "write_header": "kdf", "EnvVar": "keysource",
    "KeyFile": "keysource", "KeySource": "keysource", "Passphrase": "keysource", "SystemdCredential": "keysource",
    "MigrationError": "migrate", "execute_all": "migrate", "Store": "store",
}


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)


__all__ = [
    "BackupInfo",
    "Database",
    "EnvVar",
    "KdfParams",
    "KeyFile",
    "KeySource",
    "MigrationError",
    "Passphrase",
    "Store",
    "StoreHeader",
    "SystemdCredential",
    "derive_key",
    "execute_all",
    "latest_version",
    "read_header",
    "write_header",
]
