"""The operator's space: its configuration row, its policies, and what every operator module shares."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from appliance.clock import Clock, rfc3339
from appliance.crypto.keys import SigningKey
from appliance.domain.membership import GRADE_MIN, Action, check_grade, check_space_id
from appliance.errors import NotAnOperator, OperatorExists
from appliance.events import EventBus
from appliance.operator.broker_config import MODES, new_password
from appliance.services.evidence import EvidenceLog
from appliance.services.identity import KeyRing
from appliance.services.sync import SyncService
from appliance.storage.database import Database


@dataclass(frozen=True)
class Policies:
    """How the operator runs its space."""

    auto_admit: bool = False
    credential_days: int = 365
    invitation_days: int = 7
    default_grade: int = GRADE_MIN  # the member grade of an admission that names none (auto-admission)

    def __post_init__(self) -> None:
        check_grade(self.default_grade)

    def to_json(self) -> dict:
        return {"auto_admit": self.auto_admit, "credential_days": self.credential_days,
                "invitation_days": self.invitation_days, "default_grade": self.default_grade}

    @classmethod
    def from_json(cls, data: dict) -> Policies:
        keys = ("auto_admit", "credential_days", "invitation_days", "default_grade")
        return cls(**{k: data[k] for k in keys if k in data})


@dataclass(frozen=True)
class OperatorSpace:
    space_id: str
    name: str
    policies: Policies
    broker_host: str
    broker_port: int
    tls_ca_pem: str | None
    broker_mode: str
    broker_dir: str | None
    operator_password: str = field(repr=False)
    admin_password: str = field(repr=False)
    created: str


_COLUMNS = ("space_id, name, policies, broker_host, broker_port, tls_ca_pem, broker_mode, broker_dir, "
            "operator_password, admin_password, created")


def load_space(conn) -> OperatorSpace | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM operator_space WHERE id = 1").fetchone()
    if row is None:
        return None
    space_id, name, policies, host, port, ca, mode, folder, op_pw, admin_pw, created = row
    return OperatorSpace(space_id, name, Policies.from_json(json.loads(policies)), host, port, ca, mode, folder,
                         op_pw, admin_pw, created)


def create_space(conn, *, space_id: str, name: str, broker_host: str, broker_port: int, tls_ca_pem: str | None,
                 policies: Policies, broker_mode: str, ts: str, home: object) -> OperatorSpace:
    """Write the operator's space row inside the caller's transaction (one space per operator store)."""
    check_space_id(space_id)
    if broker_mode not in MODES:
        raise ValueError(f"broker mode must be one of {MODES}")
    existing = load_space(conn)
    if existing is not None:
        raise OperatorExists(home, existing.space_id)
    conn.execute(
        f"INSERT INTO operator_space (id, {_COLUMNS}) VALUES (1, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?)",
        (space_id, name, json.dumps(policies.to_json()), broker_host, int(broker_port), tls_ca_pem, broker_mode,
         new_password(), new_password(), ts),
    )
    space = load_space(conn)
    assert space is not None
    return space


class OperatorContext:
    """What the operator modules share: the store, the node's key, the clock, sync and the event bus."""

    def __init__(self, db: Database, evidence: EvidenceLog, keyring: KeyRing, clock: Clock, bus: EventBus,
                 sync: SyncService, home: Path) -> None:
        self.db = db
        self.evidence = evidence
        self.keyring = keyring
        self.clock = clock
        self.bus = bus
        self.sync = sync
        self.home = home
        self._space: OperatorSpace | None = None

    @property
    def did(self) -> str:
        return self.keyring.node_did

    def key(self) -> SigningKey:
        return self.keyring.signing_key()

    def now(self) -> str:
        return rfc3339(self.clock.now())

    def space(self, conn=None) -> OperatorSpace:
        """The operator's space; NotAnOperator if this store does not run one."""
        if self._space is None:
            self._space = conn and load_space(conn) or self.db.read(load_space)
        if self._space is None:
            raise NotAnOperator(self.home)
        return self._space

    def forget(self) -> None:
        self._space = None

    def record(self, conn, action: Action, subject: str, payload: dict | None = None) -> None:
        self.evidence.append(conn, action=str(action), subject=subject, payload=payload)
