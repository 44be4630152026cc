"""`dsnode operator …`: run a data space. Each handler opens the node and calls ``node.operator``."""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import asdict
import socket
from pathlib import Path

from appliance import i18n
from appliance.errors import BrokerConfigError, LocalText, NotAnOperator, OperatorError
from appliance.node import KDF_PROFILES, Node
from appliance.operator.broker_config import ListenerConfig
from appliance.domain.membership import GRADE_MIN, GRADES
from appliance.operator.space import Policies
from appliance.services.contracts.terms import offer_summary
from appliance.settings import Settings
from edge import forward
from edge.cmd_node import open_node
from edge.columns import display_width, pad
from edge.secrets import new_passphrase

t = i18n.t


def _words(kind: str, values: list[str]) -> tuple[list[str], int]:
    """Stored statuses (``member``, ``pending``…) in the user's words (``operator.<kind>.<value>``), and
    the width of the widest; --json keeps the raw values."""
    texts = [t(f"operator.{kind}.{v}") if i18n.lookup(f"operator.{kind}.{v}", "en") else v for v in values]
    return texts, max((display_width(x) for x in texts), default=0)


def _pricing(pricing: object) -> str:
    """A listing's pricing: its ODRL offers in plain words, anything else as the provider wrote it."""
    items = pricing if isinstance(pricing, list) else [] if pricing is None else [pricing]
    lang = i18n.get_lang()
    texts = [offer_summary(p, lang) if isinstance(p, dict) and ("permission" in p or "odrl:permission" in p)
             else p if isinstance(p, str) else json.dumps(p, ensure_ascii=False) for p in items]
    return ("; " if lang == "en" else "；").join(texts) or "-"


def _compliance(statement: object) -> str:
    if statement is None or statement == "":
        return "-"
    return statement if isinstance(statement, str) else json.dumps(statement, ensure_ascii=False)


def _operator_node(settings: Settings) -> Node:
    node = open_node(settings)
    if not node.operator.is_operator:
        node.close()
        raise NotAnOperator(settings.home)
    return node


def _read_pem(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as e:
        raise BrokerConfigError(LocalText("operator.reason.cannot_read_pem", path, type(e).__name__)) from None


def init(args, settings: Settings) -> int:
    policies = Policies(auto_admit=args.auto_admit, credential_days=args.credential_days,
                        invitation_days=args.invitation_days, default_grade=args.default_grade)
    ca = _read_pem(args.tls_ca)
    if Node.exists(settings.home):
        node = open_node(settings)
    else:
        passphrase = new_passphrase(settings)
        kdf = KDF_PROFILES[args.kdf or settings.kdf_profile]()
        node = Node.init(settings.home, passphrase, name=args.node_name or f"{args.name} operator",
                         org=args.org, kdf=kdf)
    with node:
        space = node.operator.create_space(space_id=args.space, name=args.name, broker_host=args.broker_host,
                                           broker_port=args.broker_port, tls_ca_pem=ca, policies=policies)
        print(t("operator.created", space.space_id, space.name, node.identity.did))
        print(t("operator.next_steps"))
    return 0


def run(args, settings: Settings) -> int:
    from edge.daemon import json_logs, serve

    json_logs()
    with _operator_node(settings) as node:
        space = node.operator.space()
        broker = None
        if args.embedded_broker:
            from edge.broker_process import start_embedded_broker

            listener = ListenerConfig(host=args.listen, port=space.broker_port, tls_cert=args.tls_cert,
                                      tls_key=args.tls_key)
            broker = start_embedded_broker(node, listener, limits=settings.broker)
            print(t("operator.embedded_broker", args.listen, broker.port), flush=True)
        try:
            serve(node, settings, config_path=getattr(args, "config", None), tcp_port=args.control_tcp,
                  started=lambda host: print(t("operator.running", space.space_id,
                                               f"{space.broker_host}:{space.broker_port}"), flush=True))
        finally:
            if broker is not None:
                broker.stop()
    print(t("operator.stopped"))
    return 0


def invite(args, settings: Settings) -> int:
    with _operator_node(settings) as node:
        invitation = node.operator.invite(org=args.org, days=args.expires)
    code = invitation.code()
    if args.out:
        fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # a one-time secret
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(code + "\n")
        os.chmod(args.out, 0o600)
        print(t("operator.invite_saved", args.out))
    too_long = None
    if args.qr:
        try:
            invitation.write_qr(args.qr)
            print(t("operator.invite_qr", args.qr))
        except OperatorError as e:  # the invitation is made all the same: shown, then the error
            too_long = e
    print(t("operator.invite_made", invitation.space_id, invitation.expires))
    print(code)
    if too_long is not None:
        raise too_long
    return 0


def members(args, settings: Settings) -> int:
    with _operator_node(settings) as node:
        rows = node.operator.members()
    if args.json:
        print(json.dumps([{"did": m.did, "name": m.name, "org": m.org, "status": m.status, "grade": m.grade,
                           "member_since": m.member_since, "ended": m.ended, "reason": m.reason} for m in rows],
                         ensure_ascii=False, indent=2))
        return 0
    statuses, width = _words("member_status", [m.status for m in rows])
    for m, status in zip(rows, statuses, strict=True):
        print(f"{pad(status, width)} {m.member_since[:10]}  {t('operator.grade', m.grade)}  {m.did}  "
              f"{m.name} ({m.org or '-'})" + (f"  — {m.reason}" if m.reason else ""))
    if not rows:
        print(t("operator.none"))
    return 0


def admissions(args, settings: Settings) -> int:
    with _operator_node(settings) as node:
        rows = node.operator.admissions(None if args.all else "pending")
    if args.json:
        print(json.dumps([asdict(a) for a in rows], ensure_ascii=False, indent=2))
        return 0
    statuses, width = _words("admission_status", [a.status for a in rows])
    for a, status in zip(rows, statuses, strict=True):
        print(f"#{a.id:<4} {pad(status, width)} {a.requested[:16]}  {a.node_did}  {a.name} ({a.org or '-'})"
              + (f"  — {a.reason}" if a.reason else ""))
    if not rows:
        print(t("operator.none"))
    return 0


def admit(args, settings: Settings) -> int:
    with _operator_node(settings) as node:
        node.operator.admit(args.id, args.grade)
        done = [a for a in node.operator.admissions() if a.id == args.id]
    status = done[0].status if done else "?"
    print(t("operator.admitted", args.id) if status == "admitted" else t("operator.admit_queued", args.id))
    return 0


def reject(args, settings: Settings) -> int:
    with _operator_node(settings) as node:
        node.operator.reject(args.id, args.reason)
    print(t("operator.rejected", args.id))
    return 0


def revoke(args, settings: Settings) -> int:
    with _operator_node(settings) as node:
        statement = node.operator.revoke(args.did, args.reason)
    print(t("operator.revoked", args.did, statement["seq"]))
    return 0


def listings(args, settings: Settings) -> int:
    with _operator_node(settings) as node:
        rows = node.operator.listings(None if args.all else "pending")
    statuses, width = _words("listing_status", [r.status for r in rows])
    for r, status in zip(rows, statuses, strict=True):
        title = r.entry.get("dct:title") or r.entry.get("title") or ""
        if isinstance(title, dict):
            title = title.get(i18n.get_lang()) or next(iter(title.values()), "")
        print(f"#{r.id:<4} {pad(status, width)} {r.provider}  {r.dataset_id}  {title}"
              + (f"  — {r.reason}" if r.reason else ""))
        if args.details:
            print("      " + t("operator.pricing") + _pricing(r.pricing))
            print("      " + t("operator.compliance") + _compliance(r.compliance))
    if not rows:
        print(t("operator.none"))
    return 0


def approve(args, settings: Settings) -> int:
    with _operator_node(settings) as node:
        node.operator.approve_listing(args.id)
    print(t("operator.listing_approved", args.id))
    return 0


def reject_listing(args, settings: Settings) -> int:
    with _operator_node(settings) as node:
        node.operator.reject_listing(args.id, args.reason)
    print(t("operator.listing_rejected", args.id))
    return 0


def alerts(args, settings: Settings) -> int:
    with _operator_node(settings) as node:
        rows = node.operator.alerts()
    kinds, width = _words("alert_kind", [a.kind for a in rows])
    for a, kind in zip(rows, kinds, strict=True):
        print(f"#{a.id:<4} {a.raised[:19]}  {pad(kind, width)} {a.node_did}  {a.detail}")
    if not rows:
        print(t("operator.no_alerts"))
    return 0


def filings(args, settings: Settings) -> int:
    with _operator_node(settings) as node:
        rows = node.operator.filings()
    for f in rows:
        print(f"#{f.id:<4} {f.filed[:19]}  {f.filed_by}  sha256:{f.agreement_sha256}"
              + (f"  {t('operator.filing_retired', f.retired[:19], f.retire_reason or '-')}" if f.retired else ""))
    if not rows:
        print(t("operator.none"))
    return 0


def deliveries(args, settings: Settings) -> int:
    """The delivery records members filed: who delivered what to whom under which agreement (never content)."""
    with _operator_node(settings) as node:
        rows = node.operator.deliveries()
    if args.json:
        print(json.dumps([asdict(r) for r in rows], ensure_ascii=False, indent=2))
        return 0
    for r in rows:
        print(t("operator.delivery_line", r.filed[:19], r.provider, r.consumer, r.agreement_id, r.receipt.get("size"),
                r.receipt.get("sha256", "")[:16]))
    if not rows:
        print(t("operator.none"))
    return 0


def grade(args, settings: Settings) -> int:
    with _operator_node(settings) as node:
        node.operator.set_grade(args.did, args.grade)
    print(t("operator.grade_changed", args.did, args.grade))
    return 0


def demands(args, settings: Settings) -> int:
    with _operator_node(settings) as node:
        rows = node.operator.demands(None if args.all else "open")
    statuses, width = _words("demand_status", [d.status for d in rows])
    for d, status in zip(rows, statuses, strict=True):
        print(f"{pad(status, width)} {(d.expires or '-')[:10]}  {d.id}  {d.owner}  {d.title}")
    if not rows:
        print(t("operator.none"))
    return 0


MOSQUITTO_DIR = Path("/etc/mosquitto")  # Debian's mosquitto: mosquitto.conf reads conf.d/*.conf


class _Install(argparse.Action):
    """``--install``: the command writes the system's broker files itself, so it never runs inside a
    running node (whose unit may not write /etc): it needs the store to itself."""

    def __init__(self, option_strings, dest, **kwargs) -> None:
        super().__init__(option_strings, dest, nargs=0, default=False, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        setattr(namespace, self.dest, True)
        namespace.store_use = forward.EXCLUSIVE


def _broker_files(args) -> tuple[Path, Path | None]:
    """(the folder of the account files, the snippet for the system's mosquitto or None)."""
    if not args.install:
        if args.out is None:
            raise BrokerConfigError(LocalText("install.reason.out_or_install"))
        return args.out, None
    if args.password_file:  # its reload signal cannot reach a broker of another user
        raise BrokerConfigError(LocalText("install.reason.dynsec_only"))
    conf_d = args.mosquitto_dir / "conf.d"
    if not conf_d.is_dir():
        raise BrokerConfigError(LocalText("install.reason.no_conf_d", conf_d, "`sudo apt install mosquitto`"))
    return args.out or args.mosquitto_dir / "dsnode", conf_d / "dsnode.conf"


def broker_config(args, settings: Settings) -> int:
    mode = "password-file" if args.password_file else "dynsec"
    listener = ListenerConfig(host=args.host, port=args.port, tls_cert=args.tls_cert, tls_key=args.tls_key,
                              tls_ca=args.tls_ca, require_client_cert=args.require_client_cert)
    out, include = _broker_files(args)
    with _operator_node(settings) as node:
        try:
            files = node.operator.write_broker_config(out, listener, mode=mode, limits=settings.broker,
                                                      include_file=include)
        except PermissionError as e:
            raise BrokerConfigError(LocalText("install.reason.not_allowed", e.filename)) from None
    for path in files:
        print(t("operator.wrote", path))
    print(t("install.broker_installed", include, "`sudo systemctl restart mosquitto`") if include
          else t("operator.broker_start", files[0]))
    return 0


def register(sub) -> None:
    """`dsnode operator …`: create and run a data space."""
    op = sub.add_parser("operator", help=t("cli.operator")).add_subparsers(dest="action", metavar="ACTION",
                                                                          required=True)
    p = op.add_parser("init", help=t("cli.operator.init"))
    p.add_argument("--space", required=True, help=t("cli.opt.space_id"))
    p.add_argument("--name", required=True, help=t("cli.opt.space_name"))
    p.add_argument("--broker-host", default=socket.gethostname(), help=t("cli.opt.broker_host"))
    p.add_argument("--broker-port", type=int, default=8883, help=t("cli.opt.broker_port"))
    p.add_argument("--tls-ca", type=Path, help=t("cli.opt.tls_ca"))
    p.add_argument("--auto-admit", action="store_true", help=t("cli.opt.auto_admit"))
    p.add_argument("--credential-days", type=int, default=365, help=t("cli.opt.credential_days"))
    p.add_argument("--invitation-days", type=int, default=7, help=t("cli.opt.invitation_days"))
    p.add_argument("--default-grade", type=int, choices=GRADES, default=GRADE_MIN, metavar="1-5",
                   help=t("cli.opt.default_grade"))
    p.add_argument("--node-name", help=t("cli.opt.name"))
    p.add_argument("--org", default="", help=t("cli.opt.org"))
    p.add_argument("--kdf", choices=list(KDF_PROFILES), help=t("cli.opt.kdf"))
    p.set_defaults(run=init, store_use=forward.EXCLUSIVE)

    p = op.add_parser("run", help=t("cli.operator.run"))
    p.add_argument("--embedded-broker", action="store_true", help=t("cli.opt.embedded_broker"))
    p.add_argument("--listen", default="127.0.0.1", metavar="HOST", help=t("cli.opt.listen_host"))
    p.add_argument("--tls-cert", type=Path, help=t("cli.opt.tls_cert"))
    p.add_argument("--tls-key", type=Path, help=t("cli.opt.tls_key"))
    p.add_argument("--control-tcp", type=int, metavar="PORT", help=t("cli.opt.control_tcp"))
    p.set_defaults(run=run, store_use=forward.EXCLUSIVE)

    p = op.add_parser("invite", help=t("cli.operator.invite"))
    p.add_argument("--org", default="", help=t("cli.opt.invite_org"))
    p.add_argument("--expires", type=int, metavar="DAYS", help=t("cli.opt.expires"))
    p.add_argument("--out", type=Path, help=t("cli.opt.invite_out"))
    p.add_argument("--qr", type=Path, metavar="FILE.png", help=t("cli.opt.qr"))
    p.set_defaults(run=invite)

    p = op.add_parser("members", help=t("cli.operator.members"))
    p.add_argument("--json", action="store_true", help=t("cli.opt.json"))
    p.set_defaults(run=members)
    p = op.add_parser("admissions", help=t("cli.operator.admissions"))
    p.add_argument("--all", action="store_true", help=t("cli.opt.all"))
    p.add_argument("--json", action="store_true", help=t("cli.opt.json"))
    p.set_defaults(run=admissions)
    p = op.add_parser("admit", help=t("cli.operator.admit"))
    p.add_argument("id", type=int)
    p.add_argument("--grade", type=int, choices=GRADES, metavar="1-5", help=t("cli.opt.grade"))
    p.set_defaults(run=admit)
    p = op.add_parser("grade", help=t("cli.operator.grade"))
    p.add_argument("did")
    p.add_argument("grade", type=int, choices=GRADES, metavar="GRADE(1-5)")
    p.set_defaults(run=grade)
    p = op.add_parser("reject", help=t("cli.operator.reject"))
    p.add_argument("id", type=int)
    p.add_argument("--reason", required=True, help=t("cli.opt.reason"))
    p.set_defaults(run=reject)
    p = op.add_parser("revoke", help=t("cli.operator.revoke"))
    p.add_argument("did")
    p.add_argument("--reason", required=True, help=t("cli.opt.reason"))
    p.set_defaults(run=revoke)

    p = op.add_parser("listings", help=t("cli.operator.listings"))
    p.add_argument("--all", action="store_true", help=t("cli.opt.all"))
    p.add_argument("--details", action="store_true", help=t("cli.opt.details"))
    p.set_defaults(run=listings)
    p = op.add_parser("approve", help=t("cli.operator.approve"))
    p.add_argument("id", type=int)
    p.set_defaults(run=approve)
    p = op.add_parser("reject-listing", help=t("cli.operator.reject_listing"))
    p.add_argument("id", type=int)
    p.add_argument("--reason", required=True, help=t("cli.opt.reason"))
    p.set_defaults(run=reject_listing)

    op.add_parser("alerts", help=t("cli.operator.alerts")).set_defaults(run=alerts)
    op.add_parser("filings", help=t("cli.operator.filings")).set_defaults(run=filings)
    p = op.add_parser("deliveries", help=t("cli.operator.deliveries"))
    p.add_argument("--json", action="store_true", help=t("cli.opt.json"))
    p.set_defaults(run=deliveries)
    p = op.add_parser("demands", help=t("cli.operator.demands"))
    p.add_argument("--all", action="store_true", help=t("cli.opt.all"))
    p.set_defaults(run=demands)

    p = op.add_parser("broker-config", help=t("cli.operator.broker_config"))
    p.add_argument("--out", type=Path, help=t("cli.opt.broker_out"))
    p.add_argument("--install", action=_Install, help=t("install.opt.install"))
    p.add_argument("--mosquitto-dir", type=Path, default=MOSQUITTO_DIR, metavar="DIR",
                   help=t("install.opt.mosquitto_dir"))
    p.add_argument("--host", default="127.0.0.1", help=t("cli.opt.listen_host"))
    p.add_argument("--port", type=int, default=8883, help=t("cli.opt.broker_port"))
    p.add_argument("--tls-cert", type=Path, help=t("cli.opt.tls_cert"))
    p.add_argument("--tls-key", type=Path, help=t("cli.opt.tls_key"))
    p.add_argument("--tls-ca", type=Path, help=t("cli.opt.tls_client_ca"))
    p.add_argument("--require-client-cert", action="store_true", help=t("cli.opt.require_client_cert"))
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--dynsec", action="store_true", help=t("cli.opt.dynsec"))
    mode.add_argument("--password-file", action="store_true", help=t("cli.opt.password_file"))
    p.set_defaults(run=broker_config)
