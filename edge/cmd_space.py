"""`dsnode space list|status|quarantine|catalog|sync` and `dsnode run` (the headless daemon).

`dsnode run` starts space sync and runs until SIGTERM or SIGINT, then stops cleanly (offline
status published, threads joined, store closed) and exits 0. It writes one JSON line per event
(and per log record) to stderr, for journald or a log shipper.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict

from appliance import i18n
from appliance.errors import BrokerUnreachable, SpaceNotFound
from appliance.services.contracts.negotiation import listed_offers
from appliance.services.contracts.terms import offer_summary
from appliance.settings import Settings
from edge import forward
from edge.cmd_join import space_group
from edge.cmd_node import open_node
from edge.columns import print_pairs

t = i18n.t


def space_list(args, settings: Settings) -> int:
    with open_node(settings) as node:
        spaces = node.sync.spaces()
    if args.json:
        print(json.dumps([{"space_id": s.space_id, "name": s.name, "status": s.status, "operator": s.operator_did,
                           "broker": f"{s.broker_host}:{s.broker_port}", "tls": s.tls_ca_pem is not None}
                          for s in spaces], ensure_ascii=False, indent=2))
        return 0
    if not spaces:
        print(t("space.list.empty"))
        return 0
    for s in spaces:
        print(f"{s.space_id}  {s.name}  [{_membership(s.status)}]  {s.broker_host}:{s.broker_port}")
    return 0


def _membership(status: str) -> str:
    """This node's standing in a space (``member``) in the user's words; --json keeps the raw value."""
    key = f"space.membership.{status}"
    return t(key) if i18n.lookup(key, "en") else status


def space_status(args, settings: Settings) -> int:
    with open_node(settings) as node:
        statuses = node.sync.status(args.space) if args.space else node.sync.status()
    _print_status(statuses, args.json)
    return 0


def _print_status(statuses, as_json: bool) -> None:
    if as_json:
        print(json.dumps([asdict(s) for s in statuses], ensure_ascii=False, indent=2))
        return
    if not statuses:
        print(t("space.list.empty"))
    for i, s in enumerate(statuses):
        if i:
            print()
        dropped = ", ".join(f"{t(f'space.drop.{k}')} {v}" for k, v in sorted(s.dropped.items())) or "0"
        print_pairs([
            (t("space.col.space"), f"{s.space_id} ({s.name})"),
            (t("space.col.status"), _membership(s.membership)),
            (t("space.col.state"), t(f"space.state.{s.state}")), (t("space.col.broker"), s.broker),
            (t("space.col.queued"), str(s.queued)), (t("space.col.last_sync"), s.last_sync or t("space.never")),
            (t("space.col.error"), s.last_error or "-"), (t("space.col.dropped"), dropped),
            *([(t("space.col.quarantined"), t("space.quarantined.hint", s.quarantined, s.space_id))]
              if s.quarantined else []),
        ])


def space_quarantine(args, settings: Settings) -> int:
    with open_node(settings) as node:
        if args.retry:
            released, kept = node.sync.retry_quarantined(args.space)
            print(t("space.quarantine.retried", released, kept))
            return 0
        if args.discard:
            print(t("space.quarantine.discarded", node.sync.discard_quarantined(args.space)))
            return 0
        rows = node.sync.quarantined(args.space)
    if args.json:
        print(json.dumps([{"id": r.id, "topic": r.topic, "size": len(r.payload), "received": r.received,
                           "stage": r.stage, "error": r.error, "version": r.code_version, "attempts": r.attempts}
                          for r in rows], ensure_ascii=False, indent=2))
        return 0
    if not rows:
        print(t("space.quarantine.empty", args.space))
        return 0
    for r in rows:
        print(t("space.quarantine.row", r.received, r.topic, len(r.payload), t(f"space.quarantine.stage.{r.stage}"),
                r.error, r.code_version, r.attempts))
    print(t("space.quarantine.what_to_do", args.space))
    return 0


def space_catalog(args, settings: Settings) -> int:
    query = " ".join(args.query) or None
    with open_node(settings) as node:
        if args.space not in {s.space_id for s in node.sync.spaces()}:
            raise SpaceNotFound(args.space)
        entries = node.sync.catalog(args.space, query)
    if args.json:
        print(json.dumps([asdict(e) for e in entries], ensure_ascii=False, indent=2))
        return 0
    if not entries:
        print(t("space.catalog.empty", args.space))
    lang = i18n.get_lang()
    for e in entries:
        dataset = e.entry.get("entry") if isinstance(e.entry, dict) else None
        title = dataset.get("dct:title") if isinstance(dataset, dict) else None
        print(f"{e.dataset_id}  {title if isinstance(title, str) else ''}  {e.provider}  {e.updated}")
        for offer in listed_offers(e.entry, e.dataset_id):  # what `contract request --offer ID` names
            print(f"    {t('space.catalog.offer')} {offer['@id']}: {offer_summary(offer, lang)}")
    return 0


def space_sync(args, settings: Settings) -> int:
    with open_node(settings) as node:
        wanted = [s for s in node.sync.spaces() if s.status in ("joining", "member", "operator")]
        if args.space:
            wanted = [s for s in wanted if s.space_id == args.space]
            if not wanted:
                raise SpaceNotFound(args.space)
        if forward.live_node() is not None:  # the running node syncs already: wait for its queue
            statuses = _drained(node, args.seconds if args.seconds is not None else args.timeout,
                                until_empty=args.seconds is None)
        elif args.seconds is not None:
            node.start()
            try:
                time.sleep(args.seconds)
                statuses = node.sync.status()
            finally:
                node.stop()
        else:
            statuses = node.sync.run_once(timeout=args.timeout, quiet=1.0)
    statuses = [s for s in statuses if s.space_id in {w.space_id for w in wanted}]
    for s in statuses:
        print(t("space.sync.done", s.space_id, s.sent, s.received, s.queued))
    never = [s for s in statuses if not s.connected and s.last_error]
    if never:
        s = never[0]
        raise BrokerUnreachable(s.space_id, s.broker, s.last_error)
    return 0


def _drained(node, seconds: float, *, until_empty: bool):
    """The running node's spaces after ``seconds`` (or sooner, once nothing waits to be sent)."""
    deadline = time.monotonic() + seconds
    while True:
        statuses = node.sync.status()
        if until_empty and all(s.queued == 0 for s in statuses if s.connected) and any(s.connected for s in statuses):
            return statuses
        if time.monotonic() >= deadline:
            return statuses
        time.sleep(0.2)


# --- dsnode run -----------------------------------------------------------------------------


def run(args, settings: Settings) -> int:
    from edge.daemon import json_logs, serve

    json_logs()
    with open_node(settings) as node:
        serve(node, settings, config_path=getattr(args, "config", None), tcp_port=args.control_tcp,
              started=lambda host: print(t("run.started", len(node.sync.spaces())), flush=True))
    print(t("run.stopped"), flush=True)
    return 0


def register(sub) -> None:
    space = space_group(sub)
    p = space.add_parser("list", help=t("cli.space.list"))
    p.add_argument("--json", action="store_true", help=t("cli.opt.json"))
    p.set_defaults(run=space_list)
    p = space.add_parser("status", help=t("cli.space.status"))
    p.add_argument("space", nargs="?", metavar="SPACE", help=t("cli.opt.space"))
    p.add_argument("--json", action="store_true", help=t("cli.opt.json"))
    p.set_defaults(run=space_status)
    p = space.add_parser("quarantine", help=t("cli.space.quarantine"))
    p.add_argument("space", metavar="SPACE")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--retry", action="store_true", help=t("cli.opt.quarantine_retry"))
    what.add_argument("--discard", action="store_true", help=t("cli.opt.quarantine_discard"))
    p.add_argument("--json", action="store_true", help=t("cli.opt.json"))
    p.set_defaults(run=space_quarantine)
    p = space.add_parser("catalog", help=t("cli.space.catalog"))
    p.add_argument("space", metavar="SPACE")
    p.add_argument("query", nargs="*", metavar="QUERY", help=t("cli.opt.query"))
    p.add_argument("--json", action="store_true", help=t("cli.opt.json"))
    p.set_defaults(run=space_catalog)
    p = space.add_parser("sync", help=t("cli.space.sync"))
    how = p.add_mutually_exclusive_group()
    how.add_argument("--once", action="store_true", help=t("cli.opt.once"))
    how.add_argument("--for", dest="seconds", type=float, metavar="SECONDS", help=t("cli.opt.for"))
    p.add_argument("--space", metavar="SPACE", help=t("cli.opt.space"))
    p.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS", help=t("cli.opt.sync_timeout"))
    p.set_defaults(run=space_sync)

    p = sub.add_parser("run", help=t("cli.run"))
    p.add_argument("--control-tcp", type=int, metavar="PORT", help=t("cli.opt.control_tcp"))
    p.set_defaults(run=run, store_use=forward.EXCLUSIVE)
