"""Test-only migrations for the storage tests (the real schema is appliance.storage.migrations).

Schema 1: a ledger whose invariant the crash tests check (``counter.n`` = number of ``item``
rows, both changed in the same transaction). Schema 2: free-text notes with an index.
"""

PACKAGE = __name__
