"""OperatorService: the space-operator role on a Node (``node.operator``).

It creates the space, issues invitations, reviews join requests and listings, revokes members,
files agreements, witnesses members' evidence logs and keeps the broker's accounts in step. The
message handlers run on the sync worker inside sync's transaction; broker account changes run on
this service's own worker thread, never inside a transaction.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import replace
from pathlib import Path

from appliance.domain.membership import Action, MessageType
from appliance.domain.sync import SpaceConfig
from appliance.errors import ApplianceError, BrokerConfigError, LocalText
from appliance.net.broker.limits import BrokerLimits
from appliance.operator import admission, deliveries, demands, filing, listings, revocation, templates, witness
from appliance.services.delivery.service import DELIVERY_RECORD
from appliance.operator import broker_config as bc
from appliance.operator.accounts import BrokerAccounts, accounts_for_files
from appliance.services.membership.governance import RevocationRegistry
from appliance.services.membership.invitation import Invitation
from appliance.operator.space import OperatorContext, OperatorSpace, Policies, create_space, load_space

log = logging.getLogger(__name__)

SPACE_TOPIC = "operator/space"


class OperatorService:
    def __init__(self, ctx: OperatorContext, revocations: RevocationRegistry, *, worker_interval: float = 1.0) -> None:
        self._ctx = ctx
        self._revocations = revocations
        self.accounts = BrokerAccounts(ctx)
        self._interval = worker_interval
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # --- the space ----------------------------------------------------------------------------

    @property
    def is_operator(self) -> bool:
        return self._ctx.db.read(load_space) is not None

    def space(self) -> OperatorSpace:
        return self._ctx.space()

    def create_space(self, *, space_id: str, name: str, broker_host: str, broker_port: int,
                     tls_ca_pem: str | None = None, policies: Policies | None = None,
                     broker_mode: str = "dynsec") -> OperatorSpace:
        """Make this node the operator of a new space: config row, sync space, retained publications."""
        ctx = self._ctx

        def work(conn) -> OperatorSpace:
            space = create_space(conn, space_id=space_id, name=name, broker_host=broker_host, broker_port=broker_port,
                                 tls_ca_pem=tls_ca_pem, policies=policies or Policies(), broker_mode=broker_mode,
                                 ts=ctx.now(), home=ctx.home)
            ctx.forget()
            ctx.sync.add_space(conn, SpaceConfig(
                space_id=space_id, name=name, operator_did=ctx.did, broker_host=broker_host,
                broker_port=int(broker_port), tls_ca_pem=tls_ca_pem, username=_operator_username(ctx.did, broker_mode),
                password=space.operator_password, status="operator", credential=None))
            ctx.sync.publish(conn, space_id, topic=SPACE_TOPIC, type=str(MessageType.SPACE_INFO), retained=True,
                             body={"space": space_id, "name": name, "operator": ctx.did,
                                   "policies": space.policies.to_json()})
            revocation.publish_initial(ctx, conn)
            count = templates.publish_templates(ctx, conn)
            ctx.record(conn, Action.OPERATOR_SPACE_CREATED, f"urn:dsnode:space:{space_id}",
                       {"name": name, "broker": f"{broker_host}:{broker_port}", "templates": count,
                        "policies": space.policies.to_json()})
            return space

        try:
            return ctx.db.write(work)
        finally:
            ctx.forget()

    def set_policies(self, **changes) -> Policies:
        """Change the space's policies (auto_admit, credential_days, invitation_days, default_grade)."""
        ctx = self._ctx

        def work(conn) -> Policies:
            policies = replace(ctx.space(conn).policies, **changes)
            conn.execute("UPDATE operator_space SET policies = ? WHERE id = 1", (json.dumps(policies.to_json()),))
            ctx.record(conn, Action.OPERATOR_POLICIES_CHANGED, f"urn:dsnode:space:{ctx.space(conn).space_id}",
                       policies.to_json())
            return policies

        try:
            return ctx.db.write(work)
        finally:
            ctx.forget()

    def write_broker_config(self, out_dir: Path, listener: bc.ListenerConfig, *, mode: str = "dynsec",
                            plugin_path: str | None = None, limits: BrokerLimits | None = None,
                            include_file: Path | None = None) -> list[Path]:
        """Write mosquitto.conf and the account files for this space into ``out_dir``; returns the files.

        The folder ends owner-only, and as root it is handed to the mosquitto user
        (:func:`~appliance.operator.broker_config.hand_to_broker`). ``include_file``: write the
        configuration there instead, as a snippet for the system's mosquitto (readable by all: it
        names files, it holds no secret), e.g. /etc/mosquitto/conf.d/dsnode.conf."""
        ctx = self._ctx
        space = ctx.space()
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        conf = bc.mosquitto_conf(out, listener, mode=mode, plugin_path=plugin_path, limits=limits,
                                 included=include_file is not None)
        conf_file = Path(include_file) if include_file is not None else out / "mosquitto.conf"
        written = [conf_file]
        if mode == "dynsec":
            dynsec_file = out / "dynamic-security.json"
            if dynsec_file.exists():
                raise BrokerConfigError(LocalText("operator.reason.dynsec_exists", dynsec_file))
            doc = bc.dynsec_document(space.space_id, operator_did=ctx.did, operator_password=space.operator_password,
                                     admin_password=space.admin_password)
            bc.write_dynsec_file(out / "dynamic-security.json", doc)
            written.append(out / "dynamic-security.json")
        if include_file is not None:
            bc.write_readable(conf_file, conf)
        else:
            conf_file.write_text(conf, encoding="utf-8")

        def record(conn) -> None:
            conn.execute("UPDATE operator_space SET broker_mode = ?, broker_dir = ? WHERE id = 1",
                         (mode, str(out.resolve())))
            # the broker starts with only the operator's accounts: make every other one again
            conn.execute("UPDATE operator_member SET account = 'wanted' WHERE status = 'member'")
            conn.execute("UPDATE operator_invitation SET account = 'wanted' WHERE account = 'present'")
            ctx.sync.update_space(conn, space.space_id, username=_operator_username(ctx.did, mode))

        ctx.db.write(record)
        ctx.forget()
        if mode == "password-file":
            accounts = ctx.db.read(lambda c: accounts_for_files(c, ctx.space(), ctx.now()))
            bc.write_private(out / "passwd", bc.password_file_text(accounts))
            bc.write_private(out / "acl", bc.acl_file_text(accounts))
            written += [out / "passwd", out / "acl"]
        bc.hand_to_broker(out)
        return written

    # --- invitations and admissions -----------------------------------------------------------

    def invite(self, *, org: str = "", days: int | None = None) -> Invitation:
        invitation = admission.issue_invitation(self._ctx, org=org, days=days)
        self.accounts.try_reconcile()
        return invitation

    def admissions(self, status: str | None = None) -> list[admission.Admission]:
        return admission.admissions(self._ctx, status)

    def admit(self, admission_id: int, grade: int | None = None) -> None:
        """Admit a waiting join request with member ``grade`` (1–5; None: the space's default grade)."""
        admission.approve(self._ctx, admission_id, grade)
        self.process()

    def set_grade(self, did: str, grade: int) -> dict:
        """Give a member another grade: its credential is re-issued and sent to it."""
        return admission.set_grade(self._ctx, did, grade)

    def reject(self, admission_id: int, reason: str) -> None:
        admission.reject(self._ctx, admission_id, reason)

    def members(self) -> list[admission.Member]:
        return admission.members(self._ctx)

    def revoke(self, did: str, reason: str) -> dict:
        statement = revocation.revoke(self._ctx, did, reason)
        self._revocations.set(self._ctx.space().space_id, statement)
        self._wake.set()  # the worker removes the account after the grace period
        return statement

    # --- listings, filings, witness -----------------------------------------------------------

    def listings(self, status: str | None = None) -> list[listings.ListingRequest]:
        return listings.requests(self._ctx, status)

    def approve_listing(self, request_id: int) -> dict:
        return listings.approve(self._ctx, request_id)

    def reject_listing(self, request_id: int, reason: str) -> None:
        listings.reject(self._ctx, request_id, reason)

    def filings(self) -> list[filing.Filing]:
        return filing.filings(self._ctx)

    def deliveries(self) -> list[deliveries.DeliveryRecord]:
        """The delivery records members filed: each consumer's signed receipt."""
        return deliveries.records(self._ctx)

    def demands(self, status: str | None = "open") -> list[demands.OperatorDemand]:
        """Demands members published in the space (retained on ``operator/demands/…`` while open)."""
        return demands.demands(self._ctx, status)

    def alerts(self) -> list[witness.Alert]:
        return witness.alerts(self._ctx)

    def witnessed(self) -> dict[str, tuple[int, str]]:
        return witness.witnessed(self._ctx)

    # --- wiring ---------------------------------------------------------------------------------

    def attach(self, sync) -> None:
        """Register the operator's message handlers on the sync service (before it starts)."""
        sync.on(str(MessageType.JOIN_REQUEST), self._mine(self._on_join))
        sync.on(str(MessageType.LISTING_REQUEST), self._mine(lambda c, m: listings.handle_request(self._ctx, c, m)))
        sync.on(str(MessageType.LISTING_WITHDRAWN), self._mine(lambda c, m: listings.handle_withdrawn(self._ctx, c, m)))
        sync.on(str(MessageType.CONTRACT_FILE), self._mine(lambda c, m: filing.handle_file(self._ctx, c, m)))
        sync.on(str(MessageType.CONTRACT_RETIRED), self._mine(lambda c, m: filing.handle_retired(self._ctx, c, m)))
        sync.on(str(MessageType.DEMAND_SUBMIT), self._mine(lambda c, m: demands.handle_submit(self._ctx, c, m)))
        sync.on(str(MessageType.DEMAND_CLOSE), self._mine(lambda c, m: demands.handle_close(self._ctx, c, m)))
        sync.on(str(MessageType.CONSISTENCY_PROOF), self._mine(lambda c, m: witness.handle_proof(self._ctx, c, m)))
        sync.on(str(MessageType.LEAVE), self._mine(self._on_leave))
        sync.on(DELIVERY_RECORD, self._mine(lambda c, m: deliveries.handle_record(self._ctx, c, m)))
        sync.on_topic("evidence/+", self._mine(lambda c, m: witness.handle_checkpoint(self._ctx, c, m)))

    def load_revocations(self) -> None:
        """Tell the sender filter whom this operator revoked."""
        space = self._ctx.db.read(load_space)
        if space is not None:
            statement = self._ctx.db.read(revocation.current_list)
            if statement:
                self._revocations.set(space.space_id, statement)

    def _mine(self, handler):
        def run(conn, msg):
            space = load_space(conn)
            if space is None or msg.space_id != space.space_id or msg.envelope is None:
                return
            handler(conn, msg)
        return run

    def _on_join(self, conn, msg) -> None:
        if admission.handle_join_request(self._ctx, conn, msg):
            self._wake.set()

    def _on_leave(self, conn, msg) -> None:
        admission.handle_leave(self._ctx, conn, msg)
        self._wake.set()

    # --- the worker -----------------------------------------------------------------------------

    def process(self) -> int:
        """Admit approved requests and reconcile broker accounts now; returns admissions made."""
        if not self.is_operator:
            return 0
        admitted = 0
        try:
            admitted = admission.complete_approved(self._ctx, self.accounts)
        except ApplianceError as e:
            log.warning("admissions wait for the broker: %s", e.message("en"))
        demands.expire(self._ctx)
        self.accounts.try_reconcile()
        return admitted

    def start(self) -> None:
        if self._thread is not None or not self.is_operator:
            return
        self.load_revocations()
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="dsnode-operator", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stopping.set()
        self._wake.set()
        self._thread.join()
        self._thread = None

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.process()
            except Exception:  # a bug: log it, keep the operator serving
                log.exception("operator worker failed")
            self._wake.wait(self._interval)
            self._wake.clear()


def _operator_username(did: str, mode: str) -> str:
    return did if mode == "dynsec" else bc.password_username(did)

