"""`dsnode product …` and `dsnode search`: data products, their offers and listing, and local search.

Each handler opens the node, calls ``node.products`` or ``node.search`` and prints the result in
the user's language (or JSON with ``--json``). Offer summaries are generated from the policies.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from appliance import i18n
from appliance.domain import odrl
from appliance.domain.product import Offer, Product
from appliance.errors import OfferTemplateError, PolicyInvalid
from appliance.services.catalog.offers import OfferTemplates, parse_spec
from appliance.settings import Settings
from edge.cmd_node import open_node
from edge.columns import pad, print_pairs

t = i18n.t

KINDS = ("resource", "product", "file", "folder", "table", "sqlite_table", "api")
GRADES = ("general", "important", "core", "1", "2", "3", "4")


# --- product ---------------------------------------------------------------------------------------


def create(args, settings: Settings) -> int:
    with open_node(settings) as node:
        offers = _offers(node, args)
        product = node.products.create(title=args.title, description=args.description, keywords=args.keyword,
                                       domain=args.domain, resource_ids=args.resource, offers=offers)
    if args.json:
        return _print_json(product_json(product))
    print(t("product.created", product.title, product.id))
    _show(product)
    return 0


def update(args, settings: Settings) -> int:
    with open_node(settings) as node:
        pid = node.products.resolve(args.id)
        offers = _offers(node, args)
        changed = any(v is not None for v in (args.title, args.description, args.domain, args.keyword, args.resource)) \
            or args.repin or not offers
        product = None
        if changed:
            product = node.products.update(pid, title=args.title, description=args.description, domain=args.domain,
                                           keywords=args.keyword, resource_ids=args.resource, repin=args.repin)
        if offers:
            product = node.products.set_offers(pid, offers)
    if args.json:
        return _print_json(product_json(product))
    print(t("product.updated", product.title, product.version))
    _show(product)
    return 0


def _offers(node, args) -> list[Offer]:
    offers = [node.products.offer_from_template(*parse_spec(spec)) for spec in args.offer]
    for path in args.offer_file:
        try:
            doc = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise PolicyInvalid([f"{path}: {e}"]) from None
        offers.append(node.products.offer_from_jsonld(doc))
    return offers


def list_products(args, settings: Settings) -> int:
    with open_node(settings) as node:
        products = node.products.list(args.status)
    if args.json:
        return _print_json([product_json(p) for p in products])
    if not products:
        print(t("product.none"))
    for p in products:
        spaces = ", ".join(f"{x.space_id}:{_state(x.status)}" for x in p.listings) or "-"
        print(f"{_short(p.id)}  {pad(_state(p.status), 8)} v{p.version:<3} {p.title}  "
              f"[{t('product.n_offers', len(p.offers))}; {spaces}]")
    return 0


def show(args, settings: Settings) -> int:
    with open_node(settings) as node:
        product = node.products.get(args.id, args.version)
        if args.jsonld:
            return _print_json(node.products.dataset(product.id))
    if args.json:
        return _print_json(product_json(product))
    _show(product)
    return 0


def list_in(args, settings: Settings) -> int:
    with open_node(settings) as node:
        listing = node.products.request_listing(args.id, args.space)
        title = node.products.get(listing.product_id).title
    print(t("product.listing_requested", title, args.space, listing.version))
    return 0


def delist(args, settings: Settings) -> int:
    with open_node(settings) as node:
        done = node.products.delist(args.id, args.space, reason=args.reason, notice_days=args.notice_days)
    for x in done:
        print(t("product.delisted", x.space_id, x.notice_until))
    return 0


def templates(args, settings: Settings) -> int:
    found = OfferTemplates().all()
    lang = i18n.get_lang()
    if args.json:
        return _print_json([{"id": x.id, "title": x.title, "description": x.description,
                             "parameters": {p.name: {"type": p.type, "default": p.default, "required": p.required,
                                                     "label": p.label} for p in x.parameters}} for x in found])
    for x in found:
        print(f"{x.id}  {x.title_in(lang)}")
        print(f"    {x.description_in(lang)}")
        for p in x.parameters:
            default = t("product.param.required") if p.required else (p.default if p.default is not None
                                                                         else t("product.param.optional"))
            print(f"    {p.name}={default}  {p.text(lang)}")
    return 0


def lineage(args, settings: Settings) -> int:
    with open_node(settings) as node:
        links = node.products.lineage(args.resource)
    if args.json:
        return _print_json([link.__dict__ for link in links])
    if not links:
        print(t("product.lineage_none", args.resource))
    for link in links:
        mark = "*" if link.current else " "
        print(f"{mark} {link.product_id} v{link.product_version}  {link.product_title}  "
              f"<- {link.resource_id} v{link.version}")
    return 0


# --- search ----------------------------------------------------------------------------------------


def search(args, settings: Settings) -> int:
    text = " ".join(args.text)
    with open_node(settings) as node:
        hits = node.search.query(text, domain=args.domain, grade=args.grade, kind=args.kind, limit=args.limit)
    if args.json:
        return _print_json([h.to_json() for h in hits])
    if not hits:
        print(t("search.none", text))
    for i, h in enumerate(hits, 1):
        grade = " · ".join(filter(None, (h.domain, t(f"search.category.{h.category}") if h.category else "",
                                         t("search.level", h.sensitivity) if h.sensitivity else "")))
        kind = t(f"search.kind.{h.type or h.kind}")
        print(f"{i:>2}. [{kind}] {h.title}  {h.ref}" + (f"  ({grade})" if grade else ""))
        if h.snippet and h.field != "title":
            field = t(f"search.field.{h.field}")
            print(f"    {field}: {h.snippet}")
    return 0


# --- output ----------------------------------------------------------------------------------------


def product_json(p: Product) -> dict:
    return {
        "id": p.id, "version": p.version, "status": p.status, "title": p.title, "description": p.description,
        "keywords": list(p.keywords), "domain": p.domain, "created": p.created, "updated": p.updated,
        "resources": [{"id": r.resource_id, "version": r.version, "title": r.title, "kind": r.kind, "sha256": r.sha256,
                       "size": r.size, "row_count": r.row_count, "columns": list(r.columns)} for r in p.resources],
        "offers": [{"uid": o.uid, "template": o.template, "params": o.params,
                    "summary": {lang: odrl.summarize(o.policy, lang) for lang in i18n.LANGS},
                    "policy": odrl.to_jsonld(o.policy)} for o in p.offers],
        "listings": [x.__dict__ for x in p.listings],
    }


def _show(p: Product) -> None:
    lang, tz = i18n.get_lang(), datetime.now().astimezone().tzinfo
    rows = [(t("product.field.title"), p.title), (t("product.field.id"), p.id),
            (t("product.field.status"), t("product.status_version", _state(p.status), p.version))]
    if p.description:
        rows.append((t("product.field.description"), p.description))
    if p.domain:
        rows.append((t("product.field.domain"), p.domain))
    if p.keywords:
        rows.append((t("product.field.keywords"), ", ".join(p.keywords)))
    for i, pin in enumerate(p.resources):
        label = t("product.field.resources") if i == 0 else ""
        rows.append((label, t("product.pin", pin.resource_id, pin.version, pin.title or "?", _kind(pin.kind))))
    for i, o in enumerate(p.offers, 1):
        rows.append((t("product.field.offer", i), _offer_title(o, lang)))
        rows.append(("", odrl.summarize(o.policy, lang, tz)))
    if not p.offers:
        rows.append((t("product.field.offers"), t("product.no_offers")))
    for x in p.listings:
        text = _state(x.status) + (f" v{x.version}")
        if x.notice_until and x.status == "delisted":
            text += " " + t("product.notice_until", x.notice_until)
        if x.reason:
            text += f" ({x.reason})"
        rows.append((t("product.field.listing", x.space_id), text))
    print_pairs(rows)


def _offer_title(o: Offer, lang: str) -> str:
    if not o.template:
        return o.uid
    params = " ".join(f"{k}={v}" for k, v in o.params.items())
    try:
        title = OfferTemplates().get(o.template).title_in(lang)
    except OfferTemplateError:  # a template removed since: its id is still meaningful
        title = o.template
    return f"{title} ({o.template}{' ' + params if params else ''})"


def _kind(kind: str | None) -> str:
    """A pinned resource's kind (``table``) in the user's words; --json keeps the raw value."""
    return t(f"resource.type.{kind}") if kind and i18n.lookup(f"resource.type.{kind}", "en") else kind or "?"


def _state(status: str) -> str:
    return t(f"product.state.{status}")


def _short(ref: str) -> str:
    return ref.rsplit(":", 1)[-1][:8]


def _print_json(data) -> int:
    print(json.dumps(data, ensure_ascii=False, indent=2, default=str))
    return 0


# --- the command line ------------------------------------------------------------------------------


def _offer_options(p) -> None:
    p.add_argument("--offer", action="append", default=[], metavar="TEMPLATE[:NAME=VALUE,…]",
                   help=t("cli.product.opt.offer"))
    p.add_argument("--offer-file", action="append", default=[], type=Path, metavar="FILE",
                   help=t("cli.product.opt.offer_file"))


def register(sub) -> None:
    """`product` (create, update, list, show, list-in, delist, templates, lineage) and `search`."""
    prod = sub.add_parser("product", help=t("cli.product")).add_subparsers(dest="action", metavar="ACTION",
                                                                             required=True)
    p = prod.add_parser("create", help=t("cli.product.create"))
    p.add_argument("--title", required=True, help=t("cli.product.opt.title"))
    p.add_argument("--description", default="", help=t("cli.product.opt.description"))
    p.add_argument("--keyword", action="append", default=[], help=t("cli.product.opt.keyword"))
    p.add_argument("--domain", default="", help=t("cli.product.opt.domain"))
    p.add_argument("--resource", action="append", required=True, metavar="ID", help=t("cli.product.opt.resource"))
    _offer_options(p)
    p.add_argument("--json", action="store_true", help=t("cli.opt.json"))
    p.set_defaults(run=create)

    p = prod.add_parser("update", help=t("cli.product.update"))
    p.add_argument("id")
    p.add_argument("--title", help=t("cli.product.opt.title"))
    p.add_argument("--description", help=t("cli.product.opt.description"))
    p.add_argument("--keyword", action="append", help=t("cli.product.opt.keyword"))
    p.add_argument("--domain", help=t("cli.product.opt.domain"))
    p.add_argument("--resource", action="append", metavar="ID", help=t("cli.product.opt.resource"))
    p.add_argument("--repin", action="store_true", help=t("cli.product.opt.repin"))
    _offer_options(p)
    p.add_argument("--json", action="store_true", help=t("cli.opt.json"))
    p.set_defaults(run=update)

    p = prod.add_parser("list", help=t("cli.product.list"))
    p.add_argument("--status", choices=["draft", "listed", "updated", "delisted"], help=t("cli.product.opt.status"))
    p.add_argument("--json", action="store_true", help=t("cli.opt.json"))
    p.set_defaults(run=list_products)

    p = prod.add_parser("show", help=t("cli.product.show"))
    p.add_argument("id")
    p.add_argument("--version", type=int, help=t("cli.product.opt.product_version"))
    p.add_argument("--json", action="store_true", help=t("cli.opt.json"))
    p.add_argument("--jsonld", action="store_true", help=t("cli.product.opt.jsonld"))
    p.set_defaults(run=show)

    p = prod.add_parser("list-in", help=t("cli.product.list_in"))
    p.add_argument("id")
    p.add_argument("space")
    p.set_defaults(run=list_in)

    p = prod.add_parser("delist", help=t("cli.product.delist"))
    p.add_argument("id")
    p.add_argument("--space", help=t("cli.product.opt.space"))
    p.add_argument("--notice-days", type=int, default=30, help=t("cli.product.opt.notice_days"))
    p.add_argument("--reason", required=True, help=t("cli.product.opt.reason"))
    p.set_defaults(run=delist)

    p = prod.add_parser("templates", help=t("cli.product.templates"))
    p.add_argument("--json", action="store_true", help=t("cli.opt.json"))
    p.set_defaults(run=templates)

    p = prod.add_parser("lineage", help=t("cli.product.lineage"))
    p.add_argument("resource", metavar="RESOURCE_ID")
    p.add_argument("--json", action="store_true", help=t("cli.opt.json"))
    p.set_defaults(run=lineage)

    p = sub.add_parser("search", help=t("cli.search"))
    p.add_argument("text", nargs="*", metavar="TEXT")
    p.add_argument("--domain", help=t("cli.product.opt.search_domain"))
    p.add_argument("--grade", choices=GRADES, help=t("cli.product.opt.grade"))
    p.add_argument("--kind", choices=KINDS, help=t("cli.product.opt.kind"))
    p.add_argument("--limit", type=int, default=20, help=t("cli.opt.limit"))
    p.add_argument("--json", action="store_true", help=t("cli.opt.json"))
    p.set_defaults(run=search)
