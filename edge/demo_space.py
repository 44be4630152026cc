"""`dsnode demo`, second half: a whole data space on this machine.

A broker bound to 127.0.0.1 with the operator's generated configuration (mosquitto with its dynamic
security plugin when installed, otherwise the embedded in-process broker), the operator and two
nodes in temporary stores, all in this process: invitation, admission (one automatic, one after
review), listing review, catalog sync to the other node, two contract negotiations
(`edge/demo_contracts.py`), and a witnessed evidence checkpoint.
"""

from __future__ import annotations

import sys
from pathlib import Path

from appliance import i18n
from appliance.domain.sync import SyncTimers
from appliance.node import KDF_PROFILES, Node
from appliance.operator.broker_config import ListenerConfig, find_dynsec_plugin
from appliance.operator.space import Policies
from edge.broker_process import BrokerProcess, find_mosquitto, free_port, start_embedded_broker
from edge.demo_contracts import run_contract_demo, wait_for
from edge.demo_delivery import run_delivery_demo

t = i18n.t
SPACE = "demo-space"
REVIEWED_GRADE = 3  # the member grade the operator gives node B at review (auto-admission gives the default, 1)
TIMERS = SyncTimers(backoff_initial=0.1, backoff_max=1.0, reconcile_poll=1.0, stop_timeout=1.0)


def _ask(question: str, yes: bool) -> bool:
    if yes or not sys.stdin.isatty():
        print(question + "y")
        return True
    return input(question).strip().lower() in ("", "y", "yes", "是", "好")


def run_space_demo(workdir: Path, step, *, yes: bool, passphrase: bytes) -> None:
    step(t("demo.space.step.broker"))
    binary = find_mosquitto()
    if binary is not None and find_dynsec_plugin() is None:
        binary = None  # mosquitto without its dynamic security plugin: the embedded broker instead
    nodes: list[Node] = []
    broker = None

    def new_node(label: str, name: str, org: str) -> Node:
        node = Node.init(workdir / label, passphrase, name=name, org=org, kdf=KDF_PROFILES["minimum"](),
                         sync_timers=TIMERS)
        nodes.append(node)
        return node

    try:
        port = free_port()
        operator = new_node("operator", t("demo.space.operator_name"), t("demo.space.operator_org"))
        operator.operator.create_space(space_id=SPACE, name=t("demo.space.space_name"), broker_host="127.0.0.1",
                                       broker_port=port, policies=Policies(auto_admit=True))
        if binary is not None:
            files = operator.operator.write_broker_config(workdir / "broker", ListenerConfig(port=port))
            broker = BrokerProcess(binary, files[0], port)
            print(t("demo.space.broker", port, binary))
        else:
            broker = start_embedded_broker(operator, ListenerConfig(port=port), workdir / "broker")
            print(t("demo.space.broker_embedded", port))
        print(t("demo.space.operator", SPACE, operator.identity.did))
        operator.start()

        step(t("demo.space.step.invite"))
        invitation = operator.operator.invite(org=t("demo.space.org_a"))
        print(t("demo.space.code"))
        print("    " + invitation.code())
        a = new_node("node-a", t("demo.space.node_a"), t("demo.space.org_a"))
        a.membership.join(invitation.code())
        a.start()
        ok = wait_for(lambda: a.sync.space(SPACE).status == "member")
        print(t("demo.space.admitted_auto", a.identity.name) if ok else t("demo.space.timeout"))

        step(t("demo.space.step.review"))
        operator.operator.set_policies(auto_admit=False)
        b = new_node("node-b", t("demo.space.node_b"), t("demo.space.org_b"))
        b.membership.join(operator.operator.invite(org=t("demo.space.org_b")).code())
        b.start()
        requests = []
        wait_for(lambda: requests.extend(operator.operator.admissions("pending")) or requests)
        for request in requests:
            print(t("demo.space.pending", request.id, request.name, request.org, request.node_did))
            if _ask(t("demo.space.admit_q"), yes):
                operator.operator.admit(request.id, grade=REVIEWED_GRADE)
        ok = wait_for(lambda: b.sync.space(SPACE).status == "member")
        print(t("demo.space.admitted_manual", b.identity.name, REVIEWED_GRADE) if ok else t("demo.space.timeout"))

        step(t("demo.space.step.listing"))
        entry = {"@id": "urn:dsnode:demo:injection-temperature", "@type": "Dataset",
                 "dct:title": t("demo.space.dataset_title"), "dcat:keyword": [t("demo.space.keyword")],
                 "hasPolicy": [{"@type": "odrl:Offer", "permission": [{"action": "use"}]}]}
        a.membership.request_listing(SPACE, "injection-temperature", entry,
                                     pricing={"price": "200", "unit": "CNY/month"},
                                     compliance=t("demo.space.compliance"))
        pending = []
        wait_for(lambda: pending.extend(operator.operator.listings("pending")) or pending)
        for request in pending:
            print(t("demo.space.listing_pending", request.id, request.dataset_id, request.compliance))
            operator.operator.approve_listing(request.id)
            print(t("demo.space.listing_approved", request.id))

        step(t("demo.space.step.catalog"))
        found = []
        wait_for(lambda: found.extend(b.sync.catalog(SPACE, t("demo.space.keyword"))) or found)
        for e in found:
            print(t("demo.space.found", b.identity.name, e.entry["entry"]["dct:title"], e.provider))
        if not found:
            print(t("demo.space.timeout"))
        else:
            run_contract_demo(SPACE, a, b, "injection-temperature", step, lambda q: _ask(q, yes),
                              min_grade=REVIEWED_GRADE)
            run_delivery_demo(SPACE, operator, a, b, step, workdir)

        step(t("demo.space.step.witness"))
        a.evidence.record("demo.step", "urn:dsnode:demo:witness", {"step": "after listing"})
        a.membership.publish_checkpoint()
        size = a.evidence.size()
        ok = wait_for(lambda: any(s == size for s, _ in a.membership.witnessed(SPACE)))
        report = a.verify_evidence()
        verdict = t("demo.yes") if report.ok else "; ".join(report.messages())
        witnessed = len(a.membership.witnessed_notes())
        print(t("demo.space.witnessed", size, witnessed, verdict) if ok else t("demo.space.timeout"))
    finally:
        for node in reversed(nodes):
            node.close()
        if broker is not None:
            broker.stop()
            print(t("demo.space.broker_stopped"))
