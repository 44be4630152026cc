"""Schema migrations of the node store, applied in order by :mod:`appliance.storage.migrate`.

The rule:

* One module per schema version, named ``m<NNNN>_<what>.py`` with a four-digit number:
  ``m0001_foundation.py``, ``m0002_catalog.py``, ... Numbers start at 1 and have no gaps; a gap
  or a duplicate is a bug and fails at discovery, before any database is touched.
* Each module defines ``migrate(conn) -> None``. It runs inside a transaction the runner opened
  (``BEGIN IMMEDIATE``); the runner then sets ``PRAGMA user_version = N`` and commits, so a
  migration is applied completely or not at all.
* A migration must not commit: do not call ``conn.commit()`` or ``conn.executescript()`` (the
  latter commits first). Run several statements with :func:`appliance.storage.migrate.execute_all`.
* A released migration never changes. Fix mistakes with a new migration, and keep a frozen
  fixture database per released schema so the upgrade from each is tested.
* A store whose ``user_version`` is above the highest migration here was written by a newer
  dsnode and is refused (StoreFromFuture) without being changed.

Modules whose names do not start with ``m`` and a digit (helpers, ``_private``) are ignored.
"""
