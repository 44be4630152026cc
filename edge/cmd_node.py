"""The node's own `dsnode` commands: each opens the node, calls the `Node` API, prints the result."""

from __future__ import annotations

import json
import socket
from dataclasses import asdict
from pathlib import Path

from appliance import i18n
from appliance.errors import EvidenceTampered, LocalText, StoreCorrupt, StoreExists, StoreNotFound, store_reason
from appliance.node import KDF_PROFILES, Node
from appliance.settings import Settings
from appliance.storage.keysource import KeyFile
from edge import forward
from edge.columns import print_pairs
from edge.secrets import current_passphrase, new_passphrase

t = i18n.t


def open_node(settings: Settings, passphrase: bytes | None = None) -> Node:
    """The node in ``settings.home``: the running node when the command runs inside it, else
    the store opened here (the key from the key file, environment, credential or a prompt)."""
    live = forward.live_node()
    if live is not None:
        return live
    if not Node.exists(settings.home):
        raise StoreNotFound(settings.home)
    return Node.open(settings.home, passphrase if passphrase is not None else current_passphrase(settings))


def init(args, settings: Settings) -> int:
    if Node.exists(settings.home):
        raise StoreExists(settings.home)
    passphrase = new_passphrase(settings)
    kdf = KDF_PROFILES[args.kdf or settings.kdf_profile]()
    name = args.name or settings.node_name or socket.gethostname()
    with Node.init(settings.home, passphrase, name=name, org=args.org, kdf=kdf) as node:
        print(t("init.done", node.identity.did, settings.home))
    return 0


def status(args, settings: Settings) -> int:
    with open_node(settings) as node:
        st = node.status(check_store=True)
    if args.json:
        print(json.dumps(asdict(st), ensure_ascii=False, indent=2))
        if st.store_damage:
            raise StoreCorrupt(st.home, store_reason("damaged_pages", "; ".join(st.store_damage[:3])))
        return 0
    rows = [
        (t("status.name"), st.name), (t("status.org"), st.org or "-"), (t("status.did"), st.did),
        (t("status.key"), f"#{st.key_seq} {st.key_did}"), (t("status.created"), st.created),
        (t("status.home"), st.home), (t("status.schema"), str(st.schema_version)),
        (t("status.evidence"), str(st.evidence_entries)),
        (t("status.checkpoint"),
         f"{st.checkpoint_size} @ {st.checkpoint_time}" if st.checkpoint_size is not None else "-"),
        (t("status.store_file"), t("status.store_damaged") if st.store_damage else t("status.store_sound")),
    ]
    print_pairs(rows)
    if st.store_damage:  # said last, and as an error: nothing here may be relied on
        raise StoreCorrupt(st.home, store_reason("damaged_pages", "; ".join(st.store_damage[:3])))
    return 0


def evidence_list(args, settings: Settings) -> int:
    with open_node(settings) as node:
        entries = []
        for entry in node.evidence.entries(subject=args.subject, newest_first=True):
            entries.append(entry)
            if len(entries) >= args.limit:
                break
    if args.json:
        print(json.dumps([e.to_json() for e in entries], ensure_ascii=False, indent=2))
        return 0
    for e in entries:
        print(f"{e.index:>6}  {e.ts}  {e.action:<28} {e.subject}")
    if not entries:
        print(t("evidence.empty"))
    return 0


def evidence_verify(args, settings: Settings) -> int:
    extra = [_read_text(p) for p in args.checkpoint]
    with open_node(settings) as node:
        report = node.verify_evidence(extra)
    if not report.ok:
        messages = report.messages()
        for problem in messages:
            print(f"  - {problem}")
        raise EvidenceTampered(messages[0])
    print(t("evidence.verified", report.size, report.checkpoints))
    return 0


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise EvidenceTampered(LocalText("evidence.reason.checkpoint_unreadable", path, type(e).__name__)) from None


def evidence_export(args, settings: Settings) -> int:
    with open_node(settings) as node:
        count = node.export_evidence(args.file, subject=args.subject)
    print(t("evidence.exported", count, args.file))
    return 0


def evidence_checkpoint(args, settings: Settings) -> int:
    with open_node(settings) as node:
        note = node.evidence.checkpoint().note
    if args.out:
        args.out.write_text(note, encoding="utf-8")
        print(t("evidence.checkpoint_saved", args.out))
    else:
        print(note, end="")
    return 0


def identity_show(args, settings: Settings) -> int:
    with open_node(settings) as node:
        print(node.identity.did)
        for rec in node.identity.key_records():
            state = t("identity.retired", rec.retired) if rec.retired else t("identity.current")
            print(f"  #{rec.seq} {rec.did} ({state})")
    return 0


def identity_rotate(args, settings: Settings) -> int:
    with open_node(settings) as node:
        record = node.identity.rotate_key()
    print(t("identity.rotated", record.seq, record.did))
    return 0


def passphrase_change(args, settings: Settings) -> int:
    if not Node.exists(settings.home):
        raise StoreNotFound(settings.home)
    old = current_passphrase(settings)
    with open_node(settings, old) as node:
        source = KeyFile(args.new_key_file) if args.new_key_file else None
        new = new_passphrase(settings, source, use_configured=False)
        node.change_passphrase(old, new)
    print(t("passphrase.changed"))
    return 0


def backup(args, settings: Settings) -> int:
    with open_node(settings) as node:
        info = node.backup(args.file)
    print(t("backup.done", args.file, info.vault_objects, _size(info.size)))
    return 0


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def restore(args, settings: Settings) -> int:
    passphrase = current_passphrase(settings)
    with Node.restore(args.file, settings.home, passphrase, replace=args.replace) as node:
        print(t("restore.done", args.file, node.identity.did, settings.home))
    return 0


def demo(args, settings: Settings) -> int:
    from edge.demo import run_demo

    return run_demo(keep=args.keep, yes=args.yes)


def register(sub) -> None:
    """The node's own commands: init, status, evidence, identity, passphrase, backup, restore, demo."""
    p = sub.add_parser("init", help=t("cli.init"))
    p.add_argument("--name", help=t("cli.opt.name"))
    p.add_argument("--org", default="", help=t("cli.opt.org"))
    p.add_argument("--kdf", choices=["moderate", "interactive", "minimum"], help=t("cli.opt.kdf"))
    p.set_defaults(run=init, store_use=forward.EXCLUSIVE)

    p = sub.add_parser("status", help=t("cli.status"))
    p.add_argument("--json", action="store_true", help=t("cli.opt.json"))
    p.set_defaults(run=status)

    ev = sub.add_parser("evidence", help=t("cli.evidence")).add_subparsers(dest="action", metavar="ACTION",
                                                                          required=True)
    p = ev.add_parser("list", help=t("cli.evidence.list"))
    p.add_argument("--limit", type=int, default=20, help=t("cli.opt.limit"))
    p.add_argument("--subject", help=t("cli.opt.subject"))
    p.add_argument("--json", action="store_true", help=t("cli.opt.json"))
    p.set_defaults(run=evidence_list)
    p = ev.add_parser("verify", help=t("cli.evidence.verify"))
    p.add_argument("--checkpoint", type=Path, action="append", default=[], help=t("cli.opt.checkpoint"))
    p.set_defaults(run=evidence_verify)
    p = ev.add_parser("export", help=t("cli.evidence.export"))
    p.add_argument("file", type=Path)
    p.add_argument("--subject", help=t("cli.opt.subject"))
    p.set_defaults(run=evidence_export)
    p = ev.add_parser("checkpoint", help=t("cli.evidence.checkpoint"))
    p.add_argument("--out", type=Path, help=t("cli.opt.out"))
    p.set_defaults(run=evidence_checkpoint)

    idn = sub.add_parser("identity", help=t("cli.identity")).add_subparsers(dest="action", metavar="ACTION",
                                                                           required=True)
    idn.add_parser("show", help=t("cli.identity.show")).set_defaults(run=identity_show)
    idn.add_parser("rotate", help=t("cli.identity.rotate")).set_defaults(run=identity_rotate)

    pw = sub.add_parser("passphrase", help=t("cli.passphrase")).add_subparsers(dest="action", metavar="ACTION",
                                                                              required=True)
    p = pw.add_parser("change", help=t("cli.passphrase.change"))
    p.add_argument("--new-key-file", type=Path, help=t("cli.opt.new_key_file"))
    p.set_defaults(run=passphrase_change, store_use=forward.EXCLUSIVE)

    p = sub.add_parser("backup", help=t("cli.backup"))
    p.add_argument("file", type=Path)
    p.set_defaults(run=backup)
    p = sub.add_parser("restore", help=t("cli.restore"))
    p.add_argument("file", type=Path)
    p.add_argument("--replace", action="store_true", help=t("cli.opt.replace"))
    p.set_defaults(run=restore, store_use=forward.EXCLUSIVE)

    p = sub.add_parser("demo", help=t("cli.demo"))
    p.add_argument("--keep", action="store_true", help=t("cli.opt.keep"))
    p.add_argument("--yes", action="store_true", help=t("cli.opt.demo_yes"))
    p.set_defaults(run=demo, store_use=forward.INDEPENDENT)
