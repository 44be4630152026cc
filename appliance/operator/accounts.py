"""Keep the broker's accounts in step with the operator's store.

The store says who should be able to log in: the join account of every open invitation and the
account of every member. ``BrokerAccounts.reconcile()`` makes the broker agree, idempotently, and
records what it did; it runs after each admission, invitation and revocation, and again from the
operator's worker while the broker was unreachable. Broker I/O never happens inside a database
transaction.

Dynamic security mode sends commands to the plugin. Password-file mode rewrites ``passwd`` and
``acl`` in the broker folder and asks mosquitto to reload them (SIGHUP to the pid in
``mosquitto.pid``).
"""

from __future__ import annotations

import logging
import os
import signal
from datetime import timedelta
from pathlib import Path

from appliance.clock import rfc3339
from appliance.errors import ApplianceError, BrokerAdminFailed, LocalText
from appliance.operator import broker_config as bc
from appliance.operator.dynsec import AdminEndpoint, DynsecAdmin
from appliance.operator.space import OperatorContext, OperatorSpace

log = logging.getLogger(__name__)


class BrokerAccounts:
    def __init__(self, ctx: OperatorContext, *, timeout: float = 10.0, revoke_grace: float = 3.0) -> None:
        self._ctx = ctx
        self._timeout = timeout
        # A revoked member keeps its account this many seconds, so the revocation list reaches it
        # before the broker disconnects it (every other node ignores it from the list on).
        self.revoke_grace = revoke_grace

    def admin(self, space: OperatorSpace | None = None) -> DynsecAdmin:
        space = space or self._ctx.space()
        return DynsecAdmin(AdminEndpoint(space.broker_host, space.broker_port, bc.ADMIN_USERNAME,
                                         space.admin_password, space.tls_ca_pem, self._timeout))

    def reconcile(self) -> int:
        """Bring the broker's accounts in line with the store; returns how many changes were made.

        Raises BrokerAdminFailed if the broker cannot be reached or refuses a change (nothing
        already done is undone; the next call continues).
        """
        space = self._ctx.space()
        now = self._ctx.now()
        cutoff = rfc3339(self._ctx.clock.now() - timedelta(seconds=self.revoke_grace))
        todo = self._ctx.db.read(lambda c: _pending_changes(c, now, cutoff))
        if not todo:
            return 0
        if space.broker_mode == "password-file":
            return self._rewrite_files(space, now, cutoff)
        admin = self.admin(space)
        for kind, key, password in todo:
            if kind == "add_join":
                assert password is not None  # an account to add comes with its password
                admin.add_join_account(space.space_id, key, password)
            elif kind == "remove_join":
                admin.remove_join_account(key)
            elif kind == "add_member":
                assert password is not None
                admin.add_member(space.space_id, key, password)
            else:
                admin.remove_member(key)
            self._ctx.db.write(lambda c, kind=kind, key=key: _mark_done(c, kind, key))
        return len(todo)

    def try_reconcile(self) -> bool:
        """``reconcile`` that logs instead of raising: the worker will try again."""
        try:
            self.reconcile()
            return True
        except ApplianceError as e:
            log.warning("broker accounts not updated yet: %s", e.message("en"))
            return False

    def add_member_now(self, space: OperatorSpace, did: str, password: str) -> None:
        """Create a new member's account before its admission is committed."""
        if space.broker_mode == "dynsec":
            self.admin(space).add_member(space.space_id, did, password)

    # --- password-file mode -------------------------------------------------------------------

    def _rewrite_files(self, space: OperatorSpace, now: str, cutoff: str) -> int:
        if not space.broker_dir:
            raise BrokerAdminFailed(LocalText("operator.reason.no_broker_folder"))
        accounts = self._ctx.db.read(lambda c: accounts_for_files(c, space, now, cutoff))
        folder = Path(space.broker_dir)
        bc.write_private(folder / "passwd", bc.password_file_text(accounts))
        bc.write_private(folder / "acl", bc.acl_file_text(accounts))
        self._ctx.db.write(lambda c: _mark_all_done(c, now, cutoff))
        reload_broker(folder / "mosquitto.pid")
        return len(accounts.members) + len(accounts.joins)


def accounts_for_files(conn, space: OperatorSpace, now: str, ended_before: str | None = None) -> bc.Accounts:
    """Who may log in: members (and revoked ones still in their grace period) and open invitations."""
    members = {did: bc.password_hash(pw) for did, pw in conn.execute(
        "SELECT did, password FROM operator_member WHERE status = 'member' OR (ended > ? AND account != 'removed')",
        (ended_before or now,))}
    joins = {token: bc.password_hash(pw) for token, pw in
             conn.execute("SELECT token_id, join_password FROM operator_invitation WHERE expires > ?", (now,))}
    return bc.Accounts(space.space_id, conn.execute("SELECT did FROM node WHERE id = 1").fetchone()[0],
                       bc.password_hash(space.operator_password), members, joins)


def reload_broker(pid_file: Path) -> bool:
    """Ask the mosquitto whose pid is in ``pid_file`` to reload its password and ACL files."""
    try:
        pid = int(Path(pid_file).read_text().strip())
        os.kill(pid, signal.SIGHUP)
        return True
    except (OSError, ValueError):
        log.warning("could not signal the broker to reload (%s); reload it yourself", pid_file)
        return False


def _pending_changes(conn, now: str, ended_before: str) -> list[tuple[str, str, str | None]]:
    todo: list[tuple[str, str, str | None]] = []
    todo += [("add_join", t, pw) for t, pw in conn.execute(
        "SELECT token_id, join_password FROM operator_invitation WHERE account = 'wanted' AND expires > ?", (now,))]
    todo += [("remove_join", t, None) for (t,) in conn.execute(
        "SELECT token_id FROM operator_invitation WHERE account != 'removed' AND expires <= ?", (now,))]
    todo += [("add_member", d, pw) for d, pw in conn.execute(
        "SELECT did, password FROM operator_member WHERE account = 'wanted' AND status = 'member'")]
    todo += [("remove_member", d, None) for (d,) in conn.execute(
        "SELECT did FROM operator_member WHERE account != 'removed' AND status != 'member' AND ended <= ?",
        (ended_before,))]
    return todo


def _mark_done(conn, kind: str, key: str) -> None:
    if kind.endswith("_join"):
        state = "present" if kind == "add_join" else "removed"
        conn.execute("UPDATE operator_invitation SET account = ? WHERE token_id = ?", (state, key))
    else:
        state = "present" if kind == "add_member" else "removed"
        conn.execute("UPDATE operator_member SET account = ? WHERE did = ?", (state, key))


def _mark_all_done(conn, now: str, ended_before: str) -> None:
    conn.execute("UPDATE operator_member SET account = 'present' WHERE status = 'member'")
    conn.execute("UPDATE operator_member SET account = 'removed' WHERE status != 'member' AND ended <= ?",
                 (ended_before,))
    conn.execute("UPDATE operator_invitation SET account = 'present' WHERE account = 'wanted' AND expires > ?", (now,))
    conn.execute("UPDATE operator_invitation SET account = 'removed' WHERE expires <= ?", (now,))
