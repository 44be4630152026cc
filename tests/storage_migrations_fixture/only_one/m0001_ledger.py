from tests.storage_migrations_fixture.m0001_ledger import migrate  # noqa: F401
