"""Numbered schema migrations: discovery and the runner. The rule is in ``migrations/__init__.py``."""

from __future__ import annotations

import importlib
import logging
import pkgutil
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache

from appliance.errors import StoreFromFuture

log = logging.getLogger(__name__)

DEFAULT_PACKAGE = "appliance.storage.migrations"
_NAME = re.compile(r"m(\d{4})_[a-z0-9_]+")


class MigrationError(RuntimeError):
    """A bug in a migrations package (numbering, a missing ``migrate``, a migration that commits)."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    migrate: Callable[[object], None]


@lru_cache(maxsize=None)
def discover(package: str = DEFAULT_PACKAGE) -> tuple[Migration, ...]:
    """The migrations of ``package`` in order; MigrationError on gaps, duplicates or bad names."""
    pkg = importlib.import_module(package)
    found: dict[int, Migration] = {}
    for info in pkgutil.iter_modules(pkg.__path__):
        if info.ispkg or not re.match(r"m\d", info.name):
            continue
        match = _NAME.fullmatch(info.name)
        if not match:
            raise MigrationError(f"{package}.{info.name}: migration modules are named m<NNNN>_<what>")
        version = int(match.group(1))
        if version in found:
            raise MigrationError(f"{package}: two migrations numbered {version}")
        module = importlib.import_module(f"{package}.{info.name}")
        fn = getattr(module, "migrate", None)
        if not callable(fn):
            raise MigrationError(f"{package}.{info.name} has no migrate(conn) function")
        found[version] = Migration(version, info.name, fn)
    expected = list(range(1, len(found) + 1))
    if sorted(found) != expected:
        missing = sorted(set(range(1, max(found, default=0) + 1)) - set(found))
        raise MigrationError(f"{package}: migration numbers must run 1..N without gaps; missing {missing}")
    return tuple(found[v] for v in expected)


def latest_version(package: str = DEFAULT_PACKAGE) -> int:
    """The schema version a database has after all of ``package``'s migrations."""
    return len(discover(package))


def check_not_from_future(found: int, package: str = DEFAULT_PACKAGE) -> None:
    supported = latest_version(package)
    if found > supported:
        raise StoreFromFuture(found, supported)


def apply(conn, package: str = DEFAULT_PACKAGE) -> list[int]:
    """Bring ``conn`` (autocommit mode, owner thread) up to date; returns the versions applied."""
    current = conn.execute("PRAGMA user_version").fetchone()[0]
    check_not_from_future(current, package)
    applied = []
    for m in discover(package)[current:]:
        _apply_one(conn, m)
        applied.append(m.version)
    return applied


def _apply_one(conn, m: Migration) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        m.migrate(conn)
        if not conn.in_transaction:
            raise MigrationError(f"migration {m.name} committed its transaction (executescript or commit)")
        conn.execute(f"PRAGMA user_version = {m.version:d}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    log.info("applied schema migration %s", m.name)


def execute_all(conn, statements: Iterable[str]) -> None:
    """Run SQL statements one by one inside the current transaction (unlike ``executescript``)."""
    for sql in statements:
        if sql.strip():
            conn.execute(sql)
