"""The encrypted local store: SQLCipher database, key header, key sources, backups.

Typical use::

    store = Store.create(home, passphrase)            # or Store.open(home, passphrase)
    store.db.write(lambda conn: conn.execute(...))    # one transaction on the owner thread
    rows = store.db.read(lambda conn: conn.execute(...).fetchall())
    store.close()
"""

from appliance.storage.backup import BackupInfo
from appliance.storage.database import Database, latest_version
from appliance.storage.kdf import KdfParams, StoreHeader, derive_key, read_header, write_header
from appliance.storage.keysource import EnvVar, KeyFile, KeySource, Passphrase, SystemdCredential
from appliance.storage.migrate import MigrationError, execute_all
from appliance.storage.store import Store

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
