"""Admitting nodes: invitations are issued and redeemed, join requests reviewed, members admitted.

A joining node logs in with its invitation's one-time join account and publishes a
``dsnode.membership.join_request`` to ``operator/join/<token id>``. The operator checks the token
(unused, unexpired, secret matches) and, in the same transaction, marks it used and queues the
request: approved at once under the auto-admit policy, otherwise pending for review.

Admission creates the node's broker account first (outside any transaction), then in one
transaction issues the MembershipCredential, records the member and queues the sealed
``dsnode.membership.admitted`` reply (credential + broker username and password) on the join reply
topic; the node's broker session keeps it if the node is offline when the operator decides.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta

from appliance.clock import parse_rfc3339, rfc3339
from appliance.domain.membership import Action, MessageType, check_grade, credential_grade
from appliance.services.membership.statements import issue_credential
from appliance.errors import UnknownMember
from appliance.operator import broker_config as bc
from appliance.services.membership.invitation import Invitation, make_invitation, new_token, secret_hash, secret_matches
from appliance.operator.space import OperatorContext, OperatorSpace

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Admission:
    id: int
    token_id: str
    node_did: str
    name: str
    org: str
    status: str
    reason: str | None
    requested: str
    decided: str | None


@dataclass(frozen=True)
class Member:
    did: str
    name: str
    org: str
    status: str
    member_since: str
    ended: str | None
    reason: str | None
    credential: dict

    @property
    def grade(self) -> int:
        """The member grade its current credential carries (the lowest for an old one without)."""
        return credential_grade(self.credential.get("credentialSubject"))


# --- invitations -----------------------------------------------------------------------------


def issue_invitation(ctx: OperatorContext, *, org: str = "", days: int | None = None) -> Invitation:
    """Make and record a one-time invitation (the join account follows on the next reconcile)."""
    def work(conn) -> Invitation:
        space = ctx.space(conn)
        token_id, secret, join_password = new_token()
        invitation = make_invitation(
            ctx.key(), space_id=space.space_id, space_name=space.name, broker_host=space.broker_host,
            broker_port=space.broker_port, tls_ca_pem=space.tls_ca_pem, token_id=token_id, token_secret=secret,
            join_password=join_password, org=org, issued=ctx.clock.now(),
            valid_for=timedelta(days=days or space.policies.invitation_days))
        conn.execute(
            "INSERT INTO operator_invitation (token_id, secret_hash, join_password, org, issued, expires) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (token_id, secret_hash(secret), join_password, org, invitation.document["issued"], invitation.expires))
        ctx.record(conn, Action.OPERATOR_INVITED, f"urn:dsnode:invitation:{token_id}",
                   {"org": org, "expires": invitation.expires})
        return invitation

    return ctx.db.write(work)


# --- join requests ---------------------------------------------------------------------------


def handle_join_request(ctx: OperatorContext, conn, msg) -> bool:
    """A join request arrived (inside sync's transaction). Returns True if it was approved at once."""
    space = ctx.space(conn)
    body = msg.body if isinstance(msg.body, dict) else {}
    token_id = msg.topic.rsplit("/", 1)[-1]
    sender = msg.sender
    problem = _token_problem(conn, token_id, body, ctx.now())
    if problem:
        log.info("refused a join request for token %s: %s", token_id, problem)
        _reply(ctx, conn, space, token_id, sender, MessageType.REJECTED, {"reason": problem})
        return False
    name, org = str(body.get("name") or "")[:200], str(body.get("org") or "")[:200]
    member = conn.execute("SELECT status FROM operator_member WHERE did = ?", (sender,)).fetchone()
    if member and member[0] == "revoked":
        _reply(ctx, conn, space, token_id, sender, MessageType.REJECTED, {"reason": "this node was revoked"})
        _use_token(conn, token_id, sender, ctx.now())
        return False
    status = "approved" if space.policies.auto_admit else "pending"
    _use_token(conn, token_id, sender, ctx.now())
    conn.execute(
        "INSERT INTO operator_admission (token_id, node_did, name, org, card, status, requested) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (token_id, sender, name, org, json.dumps(body.get("card"), ensure_ascii=False), status, ctx.now()))
    if status == "pending":
        _reply(ctx, conn, space, token_id, sender, MessageType.JOIN_PENDING, {"status": "pending"})
    return status == "approved"


def _use_token(conn, token_id: str, node_did: str, now: str) -> None:
    conn.execute("UPDATE operator_invitation SET used = ?, used_by = ? WHERE token_id = ?", (now, node_did, token_id))


def _token_problem(conn, token_id: str, body: dict, now: str) -> str | None:
    row = conn.execute("SELECT secret_hash, expires, used FROM operator_invitation WHERE token_id = ?",
                       (token_id,)).fetchone()
    if row is None or body.get("token_id") != token_id:
        return "the invitation is not known to this space"
    stored, expires, used = row
    if not secret_matches(body.get("token_secret"), stored):
        return "the invitation secret does not match"
    if used:
        return "the invitation was already used"
    if parse_rfc3339(expires) < parse_rfc3339(now):
        return "the invitation has expired"
    return None


def _reply(ctx: OperatorContext, conn, space: OperatorSpace, token_id: str, to: str, type_: str, body: dict) -> None:
    """Answer a joining node on its join reply topic, sealed to it (its broker session keeps the
    answer while it is offline: it subscribed before it sent the request)."""
    ctx.sync.send(conn, space.space_id, to=to, type=str(type_), body=body, topic=f"operator/join/{token_id}/reply")


# --- review ----------------------------------------------------------------------------------


def admissions(ctx: OperatorContext, status: str | None = None) -> list[Admission]:
    sql = "SELECT id, token_id, node_did, name, org, status, reason, requested, decided FROM operator_admission"
    args: tuple = ()
    if status:
        sql, args = sql + " WHERE status = ?", (status,)
    return [Admission(*row) for row in ctx.db.read(lambda c: c.execute(sql + " ORDER BY id", args).fetchall())]


def approve(ctx: OperatorContext, admission_id: int, grade: int | None = None) -> None:
    """Mark a pending request approved (with the member ``grade``, else the space's default);
    :func:`complete_approved` admits it."""
    if grade is not None:
        check_grade(grade)

    def work(conn) -> None:
        row = conn.execute("SELECT status FROM operator_admission WHERE id = ?", (admission_id,)).fetchone()
        if row is None or row[0] not in ("pending", "approved"):
            raise UnknownMember(f"#{admission_id} (pending)")
        conn.execute("UPDATE operator_admission SET status = 'approved', grade = COALESCE(?, grade) WHERE id = ?",
                     (grade, admission_id))

    ctx.db.write(work)


def reject(ctx: OperatorContext, admission_id: int, reason: str) -> None:
    def work(conn) -> None:
        space = ctx.space(conn)
        row = conn.execute("SELECT token_id, node_did, status FROM operator_admission WHERE id = ?",
                           (admission_id,)).fetchone()
        if row is None or row[2] not in ("pending", "approved"):
            raise UnknownMember(f"#{admission_id} (pending)")
        token_id, did, _ = row
        conn.execute("UPDATE operator_admission SET status = 'rejected', reason = ?, decided = ? WHERE id = ?",
                     (reason, ctx.now(), admission_id))
        _reply(ctx, conn, space, token_id, did, MessageType.REJECTED, {"reason": reason})
        ctx.record(conn, Action.OPERATOR_REJECTED, did, {"reason": reason, "token": token_id})

    ctx.db.write(work)


def complete_approved(ctx: OperatorContext, accounts) -> int:
    """Admit every approved request: broker account first, then credential and reply in one transaction.

    Returns how many were admitted; a broker that cannot be reached leaves the rest approved for
    the next call (BrokerAdminFailed is raised after logging).
    """
    space = ctx.space()
    # a write (not a read) so it runs after the transaction that approved them has committed
    todo = ctx.db.write(lambda c: c.execute(
        "SELECT id, token_id, node_did, name, org, grade FROM operator_admission WHERE status = 'approved' ORDER BY id"
    ).fetchall())
    for admission_id, token_id, did, name, org, grade in todo:
        password = bc.new_password()
        accounts.add_member_now(space, did, password)
        grade = space.policies.default_grade if grade is None else grade
        ctx.db.write(lambda c, a=(admission_id, token_id, did, name, org, grade, password): _admit(ctx, c, space, *a))
    if todo and space.broker_mode == "password-file":
        accounts.reconcile()
    return len(todo)


def _admit(ctx: OperatorContext, conn, space: OperatorSpace, admission_id: int, token_id: str, did: str,
           name: str, org: str, grade: int, password: str) -> None:
    if conn.execute("SELECT status FROM operator_admission WHERE id = ?", (admission_id,)).fetchone()[0] != "approved":
        return
    now = ctx.clock.now()
    since = rfc3339(now)
    credential = issue_credential(
        ctx.key(), operator_did=ctx.did, space_id=space.space_id, space_name=space.name, node_did=did, name=name,
        org=org, member_since=since, valid_until=rfc3339(now + timedelta(days=space.policies.credential_days)),
        credential_id=f"urn:uuid:{uuid.uuid4()}", grade=grade)
    conn.execute(
        "INSERT INTO operator_member (did, name, org, status, password, credential, member_since, account) "
        "VALUES (?, ?, ?, 'member', ?, ?, ?, ?) ON CONFLICT (did) DO UPDATE SET status = 'member', "
        "password = excluded.password, credential = excluded.credential, member_since = excluded.member_since, "
        "ended = NULL, reason = NULL, account = excluded.account",
        (did, name, org, password, json.dumps(credential, ensure_ascii=False), since,
         "present" if space.broker_mode == "dynsec" else "wanted"))
    conn.execute("UPDATE operator_admission SET status = 'admitted', decided = ? WHERE id = ?", (since, admission_id))
    username = did if space.broker_mode == "dynsec" else bc.password_username(did)
    _reply(ctx, conn, space, token_id, did, MessageType.ADMITTED,
           {"credential": credential, "username": username, "password": password})
    ctx.record(conn, Action.OPERATOR_ADMITTED, did, {"name": name, "org": org, "credential": credential["id"],
                                                      "grade": grade})


def set_grade(ctx: OperatorContext, did: str, grade: int) -> dict:
    """Change a member's grade: re-issue its credential (same member-since, new grade, fresh validity)
    and send it to the member, which replaces its own and shows it to providers from then on."""
    check_grade(grade)

    def work(conn) -> dict:
        space = ctx.space(conn)
        row = conn.execute("SELECT name, org, member_since FROM operator_member WHERE did = ? AND status = 'member'",
                           (did,)).fetchone()
        if row is None:
            raise UnknownMember(did)
        name, org, since = row
        now = ctx.clock.now()
        credential = issue_credential(
            ctx.key(), operator_did=ctx.did, space_id=space.space_id, space_name=space.name, node_did=did,
            name=name, org=org, member_since=since, issued=rfc3339(now),
            valid_until=rfc3339(now + timedelta(days=space.policies.credential_days)),
            credential_id=f"urn:uuid:{uuid.uuid4()}", grade=grade)
        conn.execute("UPDATE operator_member SET credential = ? WHERE did = ?",
                     (json.dumps(credential, ensure_ascii=False), did))
        ctx.sync.send(conn, space.space_id, to=did, type=str(MessageType.CREDENTIAL), body={"credential": credential})
        ctx.record(conn, Action.OPERATOR_GRADE_CHANGED, did, {"grade": grade, "credential": credential["id"]})
        return credential

    return ctx.db.write(work)


# --- members ---------------------------------------------------------------------------------


def members(ctx: OperatorContext) -> list[Member]:
    rows = ctx.db.read(lambda c: c.execute(
        "SELECT did, name, org, status, member_since, ended, reason, credential FROM operator_member "
        "ORDER BY member_since").fetchall())
    return [Member(did, name, org, status, since, ended, reason, json.loads(credential))
            for did, name, org, status, since, ended, reason, credential in rows]


def handle_leave(ctx: OperatorContext, conn, msg) -> None:
    """A member says it leaves the space: its account goes on the next reconcile."""
    changed = conn.execute("UPDATE operator_member SET status = 'left', ended = ?, reason = 'left the space' "
                           "WHERE did = ? AND status = 'member'", (ctx.now(), msg.sender)).rowcount
    if changed:
        ctx.record(conn, Action.OPERATOR_MEMBER_LEFT, msg.sender)


def is_member(conn, did: str) -> bool:
    row = conn.execute("SELECT status FROM operator_member WHERE did = ?", (did,)).fetchone()
    return row is not None and row[0] == "member"

