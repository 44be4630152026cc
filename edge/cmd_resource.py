"""`dsnode resource …`: register data resources, look at them, label them, set masking rules.

Every command opens the node and calls ``node.resources`` (the same API the desktop app uses).
The folders registration may read come from ``DSNODE_ALLOWED_ROOTS`` (paths separated by ``:``),
defaulting to the user's home, /srv, /data, /mnt and /media.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

from appliance import i18n
from appliance.domain.catalog import Kind
from appliance.services.catalog.masking import GENERALISE_TO, RULES
from edge.cmd_node import open_node
from edge.columns import print_columns
from edge import forward

t = i18n.t
ROOTS_ENV = "DSNODE_ALLOWED_ROOTS"


def _open(settings):
    node = open_node(settings)
    if forward.live_node() is None:  # a running node took its folders from its own environment
        apply_allowed_roots(node)
    return node


def apply_allowed_roots(node) -> None:
    """The folders registration may read, from ``DSNODE_ALLOWED_ROOTS`` (when set)."""
    roots = os.environ.get(ROOTS_ENV)
    if roots:
        node.resources.allowed_roots = [Path(os.path.expanduser(p)) for p in roots.split(os.pathsep) if p]


class _Progress:
    """A one-line progress display on a terminal; silent otherwise."""

    def __init__(self) -> None:
        self.shown = False

    def __call__(self, done: int, total: int) -> None:
        if not sys.stderr.isatty() or total <= 0:
            return
        pct = min(100, done * 100 // total)
        sys.stderr.write(f"\r  {pct:3d}%  {done >> 20}/{total >> 20} MB ")
        sys.stderr.flush()
        self.shown = True

    def end(self) -> None:
        if self.shown:
            sys.stderr.write("\r" + " " * 40 + "\r")
            sys.stderr.flush()


def _dump(data) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def _resource_json(r) -> dict:
    data = asdict(r)
    data.update(kind=str(r.kind), mode=str(r.mode), category=str(r.category), keywords=list(r.keywords),
                masking=list(r.masking))
    return data


def _version_json(v) -> dict:
    data = asdict(v)
    data["columns"] = [c.to_json() for c in v.columns]
    return data


def _scan_json(s) -> dict:
    return {"kind": str(s.kind), "source": s.source, "format": s.format, "size": s.size, "sha256": s.sha256,
            "encoding": s.encoding, "rows": s.row_count, "columns": [c.to_json() for c in s.columns],
            "time_range": s.time_range, "quality": s.quality, "sensitive": [f.to_json() for f in s.findings],
            "suggested_sensitivity": s.suggested_sensitivity, "skipped": s.skipped, "files": len(s.files)}


# --- commands -----------------------------------------------------------------------------------


def add(args, settings) -> int:
    progress = _Progress()
    with _open(settings) as node:
        try:
            reg = node.resources.register(
                args.source, kind=args.kind, mode="hosted" if args.hosted else "referenced", title=args.title,
                description=args.description or "", keywords=args.keywords or "", domain=args.domain or "",
                owner=args.owner or "", update_frequency=args.frequency or "", include=args.include,
                exclude=args.exclude, table=args.table, encoding=args.encoding, delimiter=args.delimiter,
                exact=args.exact, progress=progress)
        finally:
            progress.end()
    if args.json:
        _dump({"resource": _resource_json(reg.resource), "version": _version_json(reg.version),
               "created": reg.created, "changed": reg.changed})
        return 0
    r, v = reg.resource, reg.version
    key = "resource.out.registered" if reg.created else (
        "resource.out.new_version" if reg.changed else "resource.out.unchanged")
    print(t(key, r.id, v.version))
    _summary(v, r.suggested_sensitivity)
    return 0


def _summary(v, suggested) -> None:
    if v.row_count is not None:
        print(t("resource.out.rows", v.row_count, len(v.columns), v.encoding or "-"))
    if v.files:
        print(t("resource.out.files", len(v.files), v.size))
    if v.quality:
        print(t("resource.out.quality", v.quality["score"], v.quality["profiled_rows"], v.quality["rows"]))
    for f in v.sensitive:
        print(t("resource.out.sensitive", f["column"], t(f"resource.kind.{f['kind']}"), round(f["confidence"] * 100),
                f["matched"], f["sampled"]))
    if suggested:
        print(t("resource.out.suggested", suggested))
    _skipped(v.skipped)


def _skipped(skipped: dict) -> None:
    if not skipped.get("count"):
        return
    print(t("resource.out.skipped", skipped["count"], ", ".join(f"{k}: {n}" for k, n in skipped["reasons"].items())))
    for where, reason in skipped.get("first", [])[:10]:
        print(f"    {where}: {reason}")


def list_(args, settings) -> int:
    with _open(settings) as node:
        items = [(r, node.resources.version(r.id)) for r in node.resources.list(include_removed=args.all)]
    if args.json:
        _dump([{**_resource_json(r), "rows": v.row_count, "size": v.size} for r, v in items])
        return 0
    if not items:
        print(t("resource.out.none"))
        return 0
    head = [t("resource.col.id"), t("resource.col.kind"), t("resource.col.mode"), t("resource.col.version"),
            t("resource.col.rows"), t("resource.col.level"), t("resource.col.title")]
    rows = [[r.short_id, t(f"resource.type.{r.kind}"), t(f"resource.mode.{r.mode}"), str(r.current_version),
             "-" if v.row_count is None else str(v.row_count), _level(r),
             r.title + (" " + t("resource.out.removed") if r.removed else "")] for r, v in items]
    print_columns([head] + rows)
    return 0


def _level(r) -> str:
    shown = str(r.sensitivity) if r.sensitivity else "-"
    if not r.suggested_sensitivity:
        return shown
    return f"{shown} ({t('resource.out.suggested_short', r.suggested_sensitivity)})"


def show(args, settings) -> int:
    with _open(settings) as node:
        r = node.resources.get(args.id)
        v = node.resources.version(r.id, args.version)
        versions = node.resources.versions(r.id)
    if args.json:
        _dump({"resource": _resource_json(r), "version": _version_json(v),
               "versions": [{"version": x.version, "created": x.created, "sha256": x.sha256, "size": x.size}
                            for x in versions]})
        return 0
    print_columns([[t("resource.col.id"), r.id], [t("resource.col.title"), r.title],
                   [t("resource.col.kind"), t(f"resource.type.{r.kind}")],
                   [t("resource.col.mode"), t(f"resource.mode.{r.mode}")], [t("resource.col.source"), r.source],
                   [t("resource.col.category"), t(f"resource.category.{r.category}")],
                   [t("resource.col.level"), _level(r)],
                   [t("resource.col.keywords"), ", ".join(r.keywords) or "-"],
                   [t("resource.col.description"), r.description or "-"],
                   [t("resource.col.version"), f"{v.version} ({v.created}) sha256 {v.sha256[:16]}… {v.size} B"]])
    _summary(v, None)
    if v.columns:
        print(t("resource.out.schema"))
        print_columns([[c.name, c.type, t(f"resource.kind.{c.sensitive}") if c.sensitive else "", f"{c.nulls}",
                f"{'~' if c.distinct_estimated else ''}{c.distinct}", f"{c.min} … {c.max}" if c.min is not None else ""]
               for c in v.columns])
    if v.time_range:
        print(t("resource.out.time_range", v.time_range["column"], v.time_range["min"], v.time_range["max"]))
    for rule in r.masking:
        print(t("resource.out.rule", json.dumps(rule, ensure_ascii=False)))
    if v.samples:
        print(t("resource.out.samples"))
        print_columns([list(v.column_names)] + [list(map(str, s)) for s in v.samples])
    print(t("resource.out.versions", ", ".join(f"{x.version} ({x.created[:10]})" for x in versions)))
    return 0


def scan(args, settings) -> int:
    progress = _Progress()
    with _open(settings) as node:
        try:
            result = node.resources.scan(args.source, kind=args.kind, include=args.include, exclude=args.exclude,
                                         table=args.table, encoding=args.encoding, delimiter=args.delimiter,
                                         exact=args.exact, progress=progress)
        finally:
            progress.end()
    if args.json:
        _dump(_scan_json(result))
        return 0
    print(t("resource.out.scanned", result.source, result.kind, result.format, result.size))
    print(t("resource.out.would"))
    quality = result.quality
    if result.row_count is not None:
        print(t("resource.out.rows", result.row_count, len(result.columns), result.encoding or "-"))
    if quality:
        print(t("resource.out.quality", quality["score"], quality["profiled_rows"], quality["rows"]))
    for f in result.findings:
        print(t("resource.out.sensitive", f.column, t(f"resource.kind.{f.kind}"), round(f.confidence * 100),
                f.matched, f.sampled))
    if result.suggested_sensitivity:
        print(t("resource.out.suggested", result.suggested_sensitivity))
    _skipped(result.skipped)
    return 0


def rescan(args, settings) -> int:
    if not args.id and not args.all:
        print(t("resource.out.rescan_what"), file=sys.stderr)
        return 2
    progress = _Progress()
    with _open(settings) as node:
        try:
            outcomes = (node.resources.rescan_all(progress=progress) if args.all
                        else [node.resources.rescan(args.id, progress=progress)])
        finally:
            progress.end()
    if args.json:
        _dump([asdict(o) for o in outcomes])
        return 0
    for o in outcomes:
        print(t(f"resource.rescan.{o.status}", o.resource_id, o.version, o.reason))
    return 0


def label(args, settings) -> int:
    with _open(settings) as node:
        r = node.resources.label(args.id, category=args.category, sensitivity=args.level)
    print(t("resource.out.labelled", r.id, t(f"resource.category.{r.category}"), r.sensitivity or "-"))
    return 0


def edit(args, settings) -> int:
    changes = {"title": args.title, "description": args.description, "keywords": args.keywords,
               "domain": args.domain, "owner": args.owner, "update_frequency": args.frequency}
    with _open(settings) as node:
        r = node.resources.update(args.id, **{k: v for k, v in changes.items() if v is not None})
    print(t("resource.out.updated", r.id))
    return 0


def mask(args, settings) -> int:
    with _open(settings) as node:
        if args.clear:
            r = node.resources.clear_column_rule(args.id, args.column)
        else:
            params = {"keep_first": args.keep_first, "keep_last": args.keep_last, "char": args.char,
                      "value": args.value, "length": args.length, "prefix": args.prefix, "to": args.to,
                      "width": args.width}
            rule = {"column": args.column, "rule": args.rule, **{k: v for k, v in params.items() if v is not None}}
            r = node.resources.set_column_rule(args.id, rule)
    print(t("resource.out.masking", r.id, len(r.masking)))
    return 0


def mask_preview(args, settings) -> int:
    with _open(settings) as node:
        preview = node.resources.mask_preview(args.id, n=args.rows)
    if args.json:
        _dump({"columns_before": preview.columns_before, "columns_after": preview.columns_after,
               "rows": [{"before": b, "after": a} for b, a in preview.rows]})
        return 0
    print(t("resource.out.before"))
    print_columns([preview.columns_before] + [[str(x) for x in b] for b, _ in preview.rows])
    print(t("resource.out.after"))
    print_columns([preview.columns_after] + [[str(x) for x in a] for _, a in preview.rows])
    return 0


def remove(args, settings) -> int:
    with _open(settings) as node:
        rid = node.resources.get(args.id).id
        node.resources.remove(rid)
    print(t("resource.out.removed_done", rid))
    return 0


# --- parser ----------------------------------------------------------------------------------------


def _source_options(p, *, with_meta: bool) -> None:
    p.add_argument("source", type=forward.PathText, help=t("cli.resource.opt.source"))
    p.add_argument("--kind", choices=[k.value for k in Kind], help=t("cli.resource.opt.kind"))
    p.add_argument("--include", action="append", default=[], metavar="GLOB", help=t("cli.resource.opt.include"))
    p.add_argument("--exclude", action="append", default=[], metavar="GLOB", help=t("cli.resource.opt.exclude"))
    p.add_argument("--table", help=t("cli.resource.opt.table"))
    p.add_argument("--encoding", help=t("cli.resource.opt.encoding"))
    p.add_argument("--delimiter", help=t("cli.resource.opt.delimiter"))
    p.add_argument("--exact", action="store_true", help=t("cli.resource.opt.exact"))
    p.add_argument("--json", action="store_true", help=t("cli.opt.json"))
    if with_meta:
        p.add_argument("--hosted", action="store_true", help=t("cli.resource.opt.hosted"))
        _meta_options(p)


def _meta_options(p) -> None:
    p.add_argument("--title", help=t("cli.resource.opt.title"))
    p.add_argument("--description", help=t("cli.resource.opt.description"))
    p.add_argument("--keywords", help=t("cli.resource.opt.keywords"))
    p.add_argument("--domain", help=t("cli.resource.opt.domain"))
    p.add_argument("--owner", help=t("cli.resource.opt.owner"))
    p.add_argument("--frequency", help=t("cli.resource.opt.frequency"))


def register(sub) -> None:
    """`dsnode resource add|list|show|scan|rescan|label|edit|mask|mask-preview|remove`."""
    res = sub.add_parser("resource", help=t("cli.resource")).add_subparsers(dest="action", metavar="ACTION",
                                                                             required=True)
    p = res.add_parser("add", help=t("cli.resource.add"))
    _source_options(p, with_meta=True)
    p.set_defaults(run=add)
    p = res.add_parser("scan", help=t("cli.resource.scan"))
    _source_options(p, with_meta=False)
    p.set_defaults(run=scan)
    p = res.add_parser("list", help=t("cli.resource.list"))
    p.add_argument("--all", action="store_true", help=t("cli.resource.opt.all"))
    p.add_argument("--json", action="store_true", help=t("cli.opt.json"))
    p.set_defaults(run=list_)
    p = res.add_parser("show", help=t("cli.resource.show"))
    p.add_argument("id", help=t("cli.resource.opt.id"))
    p.add_argument("--version", type=int, help=t("cli.resource.opt.version"))
    p.add_argument("--json", action="store_true", help=t("cli.opt.json"))
    p.set_defaults(run=show)
    _change_parsers(res)
    _mask_parser(res)
    p = res.add_parser("mask-preview", help=t("cli.resource.mask_preview"))
    p.add_argument("id", help=t("cli.resource.opt.id"))
    p.add_argument("--rows", type=int, default=5, help=t("cli.opt.limit"))
    p.add_argument("--json", action="store_true", help=t("cli.opt.json"))
    p.set_defaults(run=mask_preview)
    p = res.add_parser("remove", help=t("cli.resource.remove"))
    p.add_argument("id", help=t("cli.resource.opt.id"))
    p.set_defaults(run=remove)


def _change_parsers(res) -> None:
    p = res.add_parser("rescan", help=t("cli.resource.rescan"))
    p.add_argument("id", nargs="?", help=t("cli.resource.opt.id"))
    p.add_argument("--all", action="store_true", help=t("cli.resource.opt.rescan_all"))
    p.add_argument("--json", action="store_true", help=t("cli.opt.json"))
    p.set_defaults(run=rescan)
    p = res.add_parser("label", help=t("cli.resource.label"))
    p.add_argument("id", help=t("cli.resource.opt.id"))
    p.add_argument("--category", choices=["general", "important", "core"], help=t("cli.resource.opt.category"))
    p.add_argument("--level", type=int, choices=[1, 2, 3, 4], help=t("cli.resource.opt.level"))
    p.set_defaults(run=label)
    p = res.add_parser("edit", help=t("cli.resource.edit"))
    p.add_argument("id", help=t("cli.resource.opt.id"))
    _meta_options(p)
    p.set_defaults(run=edit)


def _mask_parser(res) -> None:
    p = res.add_parser("mask", help=t("cli.resource.mask"))
    p.add_argument("id", help=t("cli.resource.opt.id"))
    p.add_argument("--column", required=True, help=t("cli.resource.opt.column"))
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--rule", choices=RULES, help=t("cli.resource.opt.rule"))
    group.add_argument("--clear", action="store_true", help=t("cli.resource.opt.clear"))
    p.add_argument("--keep-first", type=int, help=t("cli.resource.opt.keep_first"))
    p.add_argument("--keep-last", type=int, help=t("cli.resource.opt.keep_last"))
    p.add_argument("--char", help=t("cli.resource.opt.char"))
    p.add_argument("--value", help=t("cli.resource.opt.value"))
    p.add_argument("--length", type=int, help=t("cli.resource.opt.length"))
    p.add_argument("--prefix", help=t("cli.resource.opt.prefix"))
    p.add_argument("--to", choices=GENERALISE_TO, help=t("cli.resource.opt.to"))
    p.add_argument("--width", type=float, help=t("cli.resource.opt.width"))
    p.set_defaults(run=mask)
