"""`dsnode demand publish|list|withdraw|matches|answer`: data demands and matching (供需撮合)."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import timedelta

from appliance import i18n
from appliance.settings import Settings
from edge.cmd_contract import _offer
from edge.cmd_node import open_node

t = i18n.t


def publish(args, settings: Settings) -> int:
    detail = {k: v for k, v in (("purpose", args.purpose), ("period", args.period), ("budget", args.budget),
                                ("contact", args.contact), ("domain", args.domain)) if v}
    if args.keyword:
        detail["keywords"] = args.keyword
    if args.column:
        detail["columns"] = args.column
    with open_node(settings) as node:
        demand_id = node.demands.publish(args.space, args.title, ttl=timedelta(days=args.days), **detail)
    print(t("demand.published", demand_id))
    return 0


def list_(args, settings: Settings) -> int:
    with open_node(settings) as node:
        demands = node.demands.list(args.space, status=None if args.all else "open")
    if args.json:
        print(json.dumps([asdict(d) for d in demands], ensure_ascii=False, indent=2))
        return 0
    if not demands:
        print(t("demand.list.empty"))
    for d in demands:
        print(f"{d.id}  {d.title}  [{d.status}]  {t('demand.expires')} {d.expires or '-'}")
    return 0


def withdraw(args, settings: Settings) -> int:
    with open_node(settings) as node:
        node.demands.withdraw(args.id)
    print(t("demand.withdrawn", args.id))
    return 0


def matches(args, settings: Settings) -> int:
    with open_node(settings) as node:
        found = node.demands.matches(args.space)
    if args.json:
        print(json.dumps([asdict(m) for m in found], ensure_ascii=False, indent=2))
        return 0
    if not found:
        print(t("demand.matches.empty"))
    for m in found:
        print(f"{m.demand_id}  ← {m.dataset_id}  ({', '.join(m.shared)})")
    return 0


def answer(args, settings: Settings) -> int:
    with open_node(settings) as node:
        nid = node.demands.answer(args.id, args.dataset, _offer(args.offer))
    print(t("demand.answered", nid))
    return 0


def register(sub) -> None:
    group = sub.add_parser("demand", help=t("cli.demand")).add_subparsers(dest="action", metavar="ACTION",
                                                                          required=True)
    p = group.add_parser("publish", help=t("cli.demand.publish"))
    p.add_argument("space", metavar="SPACE")
    p.add_argument("title", metavar="TITLE")
    for opt in ("purpose", "period", "budget", "contact", "domain"):
        p.add_argument(f"--{opt}", help=t(f"cli.demand.opt.{opt}"))
    p.add_argument("--keyword", action="append", help=t("cli.demand.opt.keyword"))
    p.add_argument("--column", action="append", help=t("cli.demand.opt.column"))
    p.add_argument("--days", type=int, default=30, help=t("cli.demand.opt.days"))
    p.set_defaults(run=publish)
    p = group.add_parser("list", help=t("cli.demand.list"))
    p.add_argument("space", nargs="?", metavar="SPACE")
    p.add_argument("--all", action="store_true", help=t("cli.demand.opt.all"))
    p.add_argument("--json", action="store_true", help=t("cli.opt.json"))
    p.set_defaults(run=list_)
    p = group.add_parser("withdraw", help=t("cli.demand.withdraw"))
    p.add_argument("id", metavar="ID")
    p.set_defaults(run=withdraw)
    p = group.add_parser("matches", help=t("cli.demand.matches"))
    p.add_argument("space", metavar="SPACE")
    p.add_argument("--json", action="store_true", help=t("cli.opt.json"))
    p.set_defaults(run=matches)
    p = group.add_parser("answer", help=t("cli.demand.answer"))
    p.add_argument("id", metavar="ID")
    p.add_argument("dataset", metavar="DATASET")
    p.add_argument("--offer", required=True, metavar="TEMPLATE", help=t("cli.contract.opt.terms"))
    p.set_defaults(run=answer)
