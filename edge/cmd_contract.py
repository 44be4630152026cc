"""`dsnode contract request|list|show|approve|reject|counter|terminate|retire|timeline|rule|rules`.

Commands open the node, call ``node.contracts`` and print the result. What they send is saved in the
outbox in the same transaction and leaves with the next `dsnode run` or `dsnode space sync`.
"""

from __future__ import annotations

import json
from dataclasses import asdict

from appliance import i18n
from appliance.errors import ContractError, LocalText
from appliance.services.catalog.offers import OfferTemplates, parse_spec
from appliance.domain.membership import GRADES
from appliance.domain.odrl import to_jsonld
from appliance.services.contracts.terms import explain, offer_summary
from appliance.settings import Settings
from edge.cmd_node import open_node
from edge.columns import display_width, pad, print_pairs

t = i18n.t
ROLE_KEYS = {"consumer": "contract.role.consumer", "provider": "contract.role.provider"}
WHO_KEYS = {"sent": "contract.who.sent", "received": "contract.who.received", "local": "contract.who.local"}
# a timeline step's event (a DSP message type, or a local one) -> its words (cli.contract_event.<key>)
EVENT_KEYS = {"ContractRequestMessage": "request", "ContractOfferMessage": "offer",
              "ContractNegotiationEventMessage:ACCEPTED": "accept", "ContractAgreementMessage": "agree",
              "ContractAgreementVerificationMessage": "verify",
              "ContractNegotiationEventMessage:FINALIZED": "finalize",
              "ContractNegotiationTerminationMessage": "terminate", "timeout": "timeout", "AgreementRetired": "retire"}


def state_text(state: str) -> str:
    """A negotiation state (``REQUESTED``) in the user's words; --json keeps the raw value."""
    key = f"cli.contract_state.{state.lower()}"
    return t(key) if i18n.lookup(key, "en") else state or "-"


def event_text(event: str) -> str:
    """A timeline step's event in the user's words (``refused …`` for a message that did not fit)."""
    if event.startswith("refused "):
        return t("cli.contract_event.refused", event_text(event.removeprefix("refused ")))
    key = EVENT_KEYS.get(event)
    return t(f"cli.contract_event.{key}") if key else event


def _offer(spec: str) -> dict:
    """``--offer`` is a template spec (``per-use-paid:price=5``) or a JSON-LD offer file (``@file.json``)."""
    if spec.startswith("@"):
        with open(spec[1:], encoding="utf-8") as f:
            return json.load(f)
    template_id, params = parse_spec(spec)
    offer = OfferTemplates().offer(template_id, params, f"urn:offer:{template_id}")
    return to_jsonld(offer.policy, context=False)


def request(args, settings: Settings) -> int:
    with open_node(settings) as node:
        offer = _offer(args.terms) if args.terms else None
        nid = node.contracts.request(args.space, args.dataset, offer_id=args.offer, offer=offer,
                                     purpose=args.purpose, region=args.region)
        asked = node.contracts.get(nid).offer
    print(t("contract.requested", nid))
    print(t("contract.requested_offer", asked.get("@id", "-"), offer_summary(asked)))
    return 0


def list_(args, settings: Settings) -> int:
    with open_node(settings) as node:
        rows = node.contracts.list(pending=True if args.pending else None)
        status = {n.id: (node.contracts.agreement(n.id) or {}).get("status") for n in rows}
    if args.json:
        print(json.dumps([{**asdict(n), "agreement_status": status[n.id]} for n in rows], ensure_ascii=False,
                         indent=2))
        return 0
    if not rows:
        print(t("contract.list.empty"))
    for n in rows:
        flag = t("contract.pending") if n.pending else ""
        if status[n.id] == "retired":
            flag = t("contract.agreement_retired")
        print(f"{n.id}  {t(ROLE_KEYS[n.role])}  {n.dataset_id}  [{state_text(n.state)}] {flag}".rstrip())
    return 0


def show(args, settings: Settings) -> int:
    with open_node(settings) as node:
        n = node.contracts.get(args.id)
        signed = node.contracts.agreement(args.id)
        moves = sorted(e.value for e in node.contracts.moves(args.id))
        reason = node.contracts.explain(args.id, i18n.get_lang())
    if args.json:
        print(json.dumps({**asdict(n), "agreement": signed, "moves": moves}, ensure_ascii=False, indent=2))
        return 0
    agreement = signed["agreement"]["@id"] + f" ({_status(signed['status'])})" if signed else "-"
    print_pairs([(t("contract.field.id"), n.id), (t("contract.field.role"), t(ROLE_KEYS[n.role])),
            (t("contract.field.state"), state_text(n.state) + (" " + t("contract.pending") if n.pending else "")),
            (t("contract.field.space"), n.space_id), (t("contract.field.peer"), n.peer),
            (t("contract.field.dataset"), n.dataset_id), (t("contract.field.offer"), n.offer.get("@id", "-")),
            (t("contract.field.deadline"), n.deadline or "-"), (t("contract.field.reason"), reason or "-"),
            (t("contract.field.agreement"), agreement)])
    return 0


def timeline(args, settings: Settings) -> int:
    with open_node(settings) as node:
        steps = node.contracts.timeline(args.id)
    if args.json:
        print(json.dumps([asdict(s) for s in steps], ensure_ascii=False, indent=2))
        return 0
    lang = i18n.get_lang()
    rows = [(s, state_text(s.state_before), state_text(s.state_after), t(WHO_KEYS[s.direction])) for s in steps]
    widths = [max((display_width(r[i]) for r in rows), default=0) for i in (1, 2, 3)]
    for s, before, after, who in rows:
        reason = explain(s.reason, s.message, lang)
        print(f"{s.ts}  {' ' * (widths[0] - display_width(before))}{before} → {pad(after, widths[1])}  "
              f"{pad(who, widths[2])} {event_text(s.event)}"
              + ("  " + t("cli.contract_timeline.reason", reason) if reason else ""))
    return 0


def approve(args, settings: Settings) -> int:
    with open_node(settings) as node:
        node.contracts.approve(args.id)
    print(t("contract.approved", args.id))
    return 0


def reject(args, settings: Settings) -> int:
    with open_node(settings) as node:
        node.contracts.reject(args.id, args.reason)
    print(t("contract.rejected", args.id))
    return 0


def terminate(args, settings: Settings) -> int:
    with open_node(settings) as node:
        node.contracts.terminate(args.id, args.reason)
    print(t("contract.terminated", args.id))
    return 0


def retire(args, settings: Settings) -> int:
    with open_node(settings) as node:
        node.contracts.retire(args.id, args.reason)
    print(t("contract.retired", args.id))
    return 0


def _status(status: str) -> str:
    return t(f"contract.agreement.{status}") if status in ("agreed", "active", "retired") else status


def counter(args, settings: Settings) -> int:
    with open_node(settings) as node:
        node.contracts.counter(args.id, _offer(args.offer))
    print(t("contract.countered", args.id))
    return 0


def rule_add(args, settings: Settings) -> int:
    if args.remove is not None:
        return rule_remove(args, settings)
    doc = {k: v for k, v in (("dataset", args.dataset), ("offer", args.offer)) if v}
    if args.org:
        doc["orgs"] = args.org
    if args.min_grade is not None:
        doc["min_grade"] = args.min_grade
    with open_node(settings) as node:
        rule_id = node.contracts.add_rule(doc)
    print(t("contract.rule_added", rule_id))
    return 0


def rule_remove(args, settings: Settings) -> int:
    if args.dataset or args.offer or args.org or args.min_grade is not None:
        raise ContractError(LocalText("contract.reason.remove_alone"))
    with open_node(settings) as node:
        node.contracts.remove_rule(args.remove)
    print(t("contract.rule.removed", args.remove))
    return 0


def rules(args, settings: Settings) -> int:
    """The auto-approval rules, numbered in the order they are tried (the number removes one)."""
    with open_node(settings) as node:
        numbered = node.contracts.numbered_rules()
    if args.json:
        print(json.dumps([{"id": n, **r.to_dict()} for n, r in numbered], ensure_ascii=False, indent=2))
        return 0
    if not numbered:
        print(t("contract.rule.none"))
    anything = t("contract.rule.any")
    for n, r in numbered:
        print_pairs([(t("contract.rule.col.n"), str(n)),
                     (t("contract.rule.col.dataset"), r.dataset or anything),
                     (t("contract.rule.col.offer"), r.offer or anything),
                     (t("contract.rule.col.orgs"), "、".join(r.orgs) if r.orgs else anything),
                     (t("contract.rule.col.peers"), ", ".join(r.peers) if r.peers else anything),
                     (t("contract.rule.col.grade"), t("contract.rule.grade", r.min_grade) if r.min_grade
                      else anything)])
        print()
    return 0


def register(sub) -> None:
    group = sub.add_parser("contract", help=t("cli.contract")).add_subparsers(dest="action", metavar="ACTION",
                                                                              required=True)
    p = group.add_parser("request", help=t("cli.contract.request"))
    p.add_argument("space", metavar="SPACE")
    p.add_argument("dataset", metavar="DATASET")
    p.add_argument("--offer", metavar="ID", help=t("cli.contract.opt.offer_id"))
    p.add_argument("--terms", metavar="TEMPLATE", help=t("cli.contract.opt.terms"))
    p.add_argument("--purpose", metavar="PURPOSE", help=t("cli.contract.opt.purpose"))
    p.add_argument("--region", metavar="CODE", help=t("cli.contract.opt.region"))
    p.set_defaults(run=request)
    p = group.add_parser("list", help=t("cli.contract.list"))
    p.add_argument("--pending", action="store_true", help=t("cli.contract.opt.pending"))
    p.add_argument("--json", action="store_true", help=t("cli.opt.json"))
    p.set_defaults(run=list_)
    for name, fn in (("show", show), ("timeline", timeline)):
        p = group.add_parser(name, help=t(f"cli.contract.{name}"))
        p.add_argument("id", metavar="ID")
        p.add_argument("--json", action="store_true", help=t("cli.opt.json"))
        p.set_defaults(run=fn)
    p = group.add_parser("approve", help=t("cli.contract.approve"))
    p.add_argument("id", metavar="ID")
    p.set_defaults(run=approve)
    for name, fn in (("reject", reject), ("terminate", terminate), ("retire", retire)):
        p = group.add_parser(name, help=t(f"cli.contract.{name}"))
        p.add_argument("id", metavar="ID")
        p.add_argument("--reason", required=True, help=t("cli.contract.opt.reason"))
        p.set_defaults(run=fn)
    p = group.add_parser("counter", help=t("cli.contract.counter"))
    p.add_argument("id", metavar="ID")
    p.add_argument("--offer", required=True, metavar="TEMPLATE", help=t("cli.contract.opt.terms"))
    p.set_defaults(run=counter)
    p = group.add_parser("rule", help=t("cli.contract.rule"))
    p.add_argument("--dataset", metavar="DATASET")
    p.add_argument("--offer", metavar="ID", help=t("cli.contract.opt.offer_id"))
    p.add_argument("--org", action="append", metavar="ORG")
    p.add_argument("--min-grade", type=int, choices=GRADES, metavar="1-5", help=t("cli.contract.opt.min_grade"))
    p.add_argument("--remove", type=int, metavar="N", help=t("cli.contract.opt.rule_remove"))
    p.set_defaults(run=rule_add)
    p = group.add_parser("rules", help=t("cli.contract.rules"))
    p.add_argument("--json", action="store_true", help=t("cli.opt.json"))
    p.set_defaults(run=rules)
