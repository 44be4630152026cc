"""`dsnode transfer …` and `dsnode data list|show`: delivering data under finalized contracts.

The data moves while the node runs (`dsnode run`, the desktop app): `transfer start` asks for it,
and the running node fetches, checks and stores it. `transfer start --push` on the provider's node
delivers the data to the consumer (the provider connects to the consumer's data channel); on the
consumer's node it asks the provider to do so. Without a running node, `--wait SECONDS`
runs the node for as long as the transfer takes (or SECONDS).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import asdict

from appliance import i18n
from appliance.errors import TransferNotFound
from appliance.settings import Settings
from edge.cmd_node import open_node
from edge.columns import print_columns, print_pairs

t = i18n.t
FINAL = ("COMPLETED", "TERMINATED")


def _state(state: str) -> str:
    return t(f"transfer.state.{state.lower()}")


def _path(path: str | None, mode: str = "pull") -> str:
    if not path:
        return "-"
    shown = t("transfer.path.direct") if path.startswith("direct") else t("transfer.path.relay")
    return f"{shown} · {t('transfer.mode.push')}" if mode == "push" else shown


def _progress(tr) -> str:
    if not tr.chunks_total:
        return "-"
    percent = 100 if tr.state == "COMPLETED" else int(100 * tr.chunks_done / tr.chunks_total)
    return f"{percent}% ({tr.chunks_done}/{tr.chunks_total})"


class _Bar:
    """A one-line progress bar with the rate and time left the progress events carry, on a terminal
    only (quiet in logs and pipes)."""

    def __init__(self, stream) -> None:
        self._stream = stream
        self._on = stream.isatty()
        self._shown = False

    def show(self, event) -> None:
        done, total = event.bytes_done, event.bytes_total
        if not self._on or total <= 0:
            return
        rate = f"{event.rate / 1e6:6.1f}" if event.rate > 0 else "     -"
        left = f"{int(event.eta + 0.5):4d}" if event.eta is not None else "   -"
        filled = int(30 * done / total)
        self._stream.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {100 * done // total:3d}%  "
                           f"{rate} MB/s  {left} s ")
        self._stream.flush()
        self._shown = True

    def end(self) -> None:
        if self._shown:
            self._stream.write("\n")
            self._stream.flush()


def start(args, settings: Settings) -> int:
    with open_node(settings) as node:
        n = node.contracts.get(args.negotiation)
        if args.push and n.role == "provider":
            tid = node.transfers.push(n.id)
        else:
            tid = node.transfers.request(n.id, path="push" if args.push else "relay" if args.relay else "auto")
        print(t("transfer.started", tid, args.negotiation), flush=True)
        if args.wait <= 0:
            return 0
        done = threading.Event()

        def on_event(event) -> None:
            if getattr(event, "transfer_id", None) == tid and getattr(event, "state", None) in FINAL:
                done.set()

        bar = _Bar(sys.stderr)

        def on_progress(event) -> None:
            if type(event).__name__ == "TransferProgress" and event.transfer_id == tid:
                bar.show(event)

        unsubscribe = node.bus.subscribe(on_event)
        stop_progress = node.bus.subscribe(on_progress)
        node.start()
        try:
            deadline = time.monotonic() + args.wait
            while not done.is_set() and time.monotonic() < deadline:
                if node.transfers.get(tid).state in FINAL:
                    break
                done.wait(0.5)
        finally:
            unsubscribe()
            stop_progress()
            bar.end()
            node.stop()
        tr = node.transfers.get(tid)
    if tr.state not in FINAL:
        print(t("transfer.timed_out", tid, int(args.wait), tid), file=sys.stderr)
        return 1
    print(t("transfer.state_now", tid, _state(tr.state)))
    return 0 if tr.state == "COMPLETED" else 1


def list_(args, settings: Settings) -> int:
    with open_node(settings) as node:
        rows = node.transfers.list()
    if args.json:
        print(json.dumps([asdict(r) for r in rows], ensure_ascii=False, indent=2))
        return 0
    if not rows:
        print(t("transfer.none"))
        return 0
    table = [[t("transfer.col.id"), t("transfer.col.role"), t("transfer.col.state"), t("transfer.col.path"),
              t("transfer.col.progress"), t("transfer.col.peer")]]
    for r in rows:
        table.append([r.id, t(f"transfer.role.{r.role}"), _state(r.state), _path(r.path, r.mode), _progress(r),
                      r.peer])
    print_columns(table)
    return 0


def show(args, settings: Settings) -> int:
    with open_node(settings) as node:
        tr = node.transfers.get(args.transfer)
        manifest = node.transfers.manifest(tr.id)
        receipt = node.transfers.receipt(tr.id)
        steps = node.transfers.timeline(tr.id)
    if args.json:
        print(json.dumps({**asdict(tr), "manifest": manifest[0] if manifest else None,
                          "receipt": receipt[0] if receipt else None, "timeline": [asdict(s) for s in steps]},
                         ensure_ascii=False, indent=2))
        return 0
    m = manifest[0] if manifest else {}
    rows = [(t("transfer.col.id"), tr.id), (t("transfer.col.role"), t(f"transfer.role.{tr.role}")),
            (t("transfer.col.state"), _state(tr.state)), (t("transfer.col.path"), _path(tr.path, tr.mode)),
            (t("transfer.field.mode"), t(f"transfer.mode.{tr.mode}")),
            (t("transfer.col.progress"), _progress(tr)), (t("transfer.col.peer"), tr.peer),
            (t("transfer.field.negotiation"), tr.negotiation_id), (t("transfer.field.agreement"), tr.agreement_id),
            (t("transfer.field.resource"), f"{tr.resource_id or '-'} v{tr.version or '-'}"),
            (t("transfer.field.size"), str(m.get("size", "-"))), (t("transfer.field.sha256"), m.get("sha256", "-")),
            (t("transfer.field.objects"), str(len(m.get("objects", [m] if m else [])))),
            (t("transfer.field.masked"), ", ".join(m.get("maskingRules", [])) or "-"),
            (t("transfer.field.receipt"), t("transfer.receipt.signed", receipt[0]["received"]) if receipt
             else t("transfer.receipt.none"))]
    if tr.reason:
        rows.append((t("transfer.field.reason"), tr.reason))
    print_pairs(rows)
    objects = m.get("objects", [])
    if len(objects) > 1:  # a folder or several resources: what the delivery holds
        print_columns([[f"  {o['name']}", f"{o['size']} B", o["sha256"]] for o in objects])
    for s in steps:
        print(f"  {s.ts}  {s.direction:<8} {s.event}  {_state(s.state_before)} → {_state(s.state_after)}"
              + (f"  {s.reason}" if s.reason else ""))
    return 0


def _act(args, settings: Settings) -> int:
    """`transfer pause|resume|cancel`: the move, then where the transfer stands."""
    with open_node(settings) as node:
        if args.action == "cancel":
            node.transfers.cancel(args.transfer, args.reason or "")
        else:
            getattr(node.transfers, args.action)(args.transfer)
        tr = node.transfers.get(args.transfer)
    print(t("transfer.state_now", tr.id, _state(tr.state)))
    return 0


def data_show(args, settings: Settings) -> int:
    """One received object, and the other objects of its delivery."""
    with open_node(settings) as node:
        everything = node.transfers.received()
        rows = [r for r in everything if r.object_id == args.id or r.object_id.startswith(args.id)]
        if len(rows) != 1:
            raise TransferNotFound(args.id)
        item = rows[0]
        manifest = node.transfers.manifest(item.transfer_id)
        receipt = node.transfers.receipt(item.transfer_id)
    objects = [r for r in everything if r.transfer_id == item.transfer_id]
    if args.json:
        print(json.dumps({**asdict(item), "objects": [asdict(r) for r in objects],
                          "manifest": manifest[0] if manifest else None,
                          "receipt": receipt[0] if receipt else None}, ensure_ascii=False, indent=2))
        return 0
    m = manifest[0] if manifest else {}
    print_pairs([(t("data.field.object"), item.object_id), (t("data.field.name"), item.name),
                 (t("transfer.field.resource"), f"{item.resource_id} v{item.version}"),
                 (t("transfer.col.peer"), item.provider), (t("transfer.field.agreement"), item.agreement_id),
                 (t("transfer.field.size"), f"{item.size} B"), (t("transfer.field.sha256"), item.sha256),
                 (t("transfer.field.masked"), ", ".join(m.get("maskingRules", [])) or "-"),
                 (t("data.field.received"), item.received), (t("transfer.col.id"), item.transfer_id)])
    print(t("data.objects", len(objects)))
    print_columns([[r.object_id, r.name, f"{r.size} B", r.sha256] for r in objects])
    print(t("data.only_through_node"))
    return 0


def received(args, settings: Settings) -> int:
    with open_node(settings) as node:
        rows = node.transfers.received()
    if args.json:
        print(json.dumps([asdict(r) for r in rows], ensure_ascii=False, indent=2))
        return 0
    if not rows:
        print(t("received.none"))
        return 0
    print_columns([[r.object_id, r.received[:19], r.name, r.resource_id, f"v{r.version}", f"{r.size} B", r.provider]
                   for r in rows])
    return 0


def peers(args, settings: Settings) -> int:
    with open_node(settings) as node:
        rows = node.peers.peers()
    if args.json:
        print(json.dumps([asdict(p) for p in rows], ensure_ascii=False, indent=2))
        return 0
    if not rows:
        print(t("peers.none"))
        return 0
    now = time.monotonic()
    print_columns([[p.name or "-", p.org or "-", ",".join(p.spaces), f"{p.address}:{p.port}",
                    t("peers.verified") if p.verified else t("peers.unverified"), f"{int(now - p.last_seen)}s",
                    p.did] for p in rows])
    return 0


def register(sub) -> None:
    p = sub.add_parser("peers", help=t("cli.peers"))
    p.add_argument("--json", action="store_true", help=t("cli.opt.json"))
    p.set_defaults(run=peers)
    group = sub.add_parser("transfer", help=t("cli.transfer")).add_subparsers(dest="action", metavar="ACTION",
                                                                            required=True)
    p = group.add_parser("start", help=t("cli.transfer.start"))
    p.add_argument("negotiation", metavar="NEGOTIATION", help=t("cli.opt.negotiation"))
    how = p.add_mutually_exclusive_group()
    how.add_argument("--relay", action="store_true", help=t("cli.opt.relay"))
    how.add_argument("--push", action="store_true", help=t("cli.opt.push"))
    p.add_argument("--wait", type=float, default=0, metavar="SECONDS", help=t("cli.opt.wait_transfer"))
    p.set_defaults(run=start)
    p = group.add_parser("list", help=t("cli.transfer.list"))
    p.add_argument("--json", action="store_true", help=t("cli.opt.json"))
    p.set_defaults(run=list_)
    p = group.add_parser("show", help=t("cli.transfer.show"))
    p.add_argument("transfer", metavar="TRANSFER", help=t("cli.opt.transfer"))
    p.add_argument("--json", action="store_true", help=t("cli.opt.json"))
    p.set_defaults(run=show)
    for name in ("pause", "resume", "cancel"):
        p = group.add_parser(name, help=t(f"cli.transfer.{name}"))
        p.add_argument("transfer", metavar="TRANSFER", help=t("cli.opt.transfer"))
        if name == "cancel":
            p.add_argument("--reason", help=t("cli.opt.reason"))
        p.set_defaults(run=_act)
    group = sub.add_parser("data", help=t("cli.received")).add_subparsers(dest="action", metavar="ACTION",
                                                                         required=True)
    p = group.add_parser("list", help=t("cli.received.list"))
    p.add_argument("--json", action="store_true", help=t("cli.opt.json"))
    p.set_defaults(run=received)
    p = group.add_parser("show", help=t("cli.data.show"))
    p.add_argument("id", metavar="OBJECT", help=t("cli.opt.data_object"))
    p.add_argument("--json", action="store_true", help=t("cli.opt.json"))
    p.set_defaults(run=data_show)
