"""`dsnode`: the command line. Parses arguments, configures logging, turns errors into one line.

Every command calls the `Node` API; nothing here knows about SQL, keys or the Merkle tree.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from pathlib import Path

from appliance import __version__, i18n
from appliance.errors import ApplianceError
from appliance.settings import load_settings
from edge import commands

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    t = i18n.t
    parser = argparse.ArgumentParser(prog="dsnode", description=t("cli.description"))
    parser.add_argument("--version", action="version", version=f"dsnode {__version__}")
    parser.add_argument("--home", type=Path, help=t("cli.opt.home"))
    parser.add_argument("--config", type=Path, help=t("cli.opt.config"))
    parser.add_argument("--lang", choices=i18n.LANGS, help=t("cli.opt.lang"))
    parser.add_argument("--key-file", type=Path, help=t("cli.opt.key_file"))
    parser.add_argument("--key-env", metavar="VAR", help=t("cli.opt.key_env"))
    parser.add_argument("--key-credential", metavar="NAME", help=t("cli.opt.key_credential"))
    parser.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"], help=t("cli.opt.log_level"))
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("init", help=t("cli.init"))
    p.add_argument("--name", help=t("cli.opt.name"))
    p.add_argument("--org", default="", help=t("cli.opt.org"))
    p.add_argument("--kdf", choices=["moderate", "interactive", "minimum"], help=t("cli.opt.kdf"))
    p.set_defaults(run=commands.init)

    p = sub.add_parser("status", help=t("cli.status"))
    p.add_argument("--json", action="store_true", help=t("cli.opt.json"))
    p.set_defaults(run=commands.status)

    ev = sub.add_parser("evidence", help=t("cli.evidence")).add_subparsers(dest="action", metavar="ACTION", required=True)
    p = ev.add_parser("list", help=t("cli.evidence.list"))
    p.add_argument("--limit", type=int, default=20, help=t("cli.opt.limit"))
    p.add_argument("--subject", help=t("cli.opt.subject"))
    p.add_argument("--json", action="store_true", help=t("cli.opt.json"))
    p.set_defaults(run=commands.evidence_list)
    p = ev.add_parser("verify", help=t("cli.evidence.verify"))
    p.add_argument("--checkpoint", type=Path, action="append", default=[], help=t("cli.opt.checkpoint"))
    p.set_defaults(run=commands.evidence_verify)
    p = ev.add_parser("export", help=t("cli.evidence.export"))
    p.add_argument("file", type=Path)
    p.add_argument("--subject", help=t("cli.opt.subject"))
    p.set_defaults(run=commands.evidence_export)
    p = ev.add_parser("checkpoint", help=t("cli.evidence.checkpoint"))
    p.add_argument("--out", type=Path, help=t("cli.opt.out"))
    p.set_defaults(run=commands.evidence_checkpoint)

    idn = sub.add_parser("identity", help=t("cli.identity")).add_subparsers(dest="action", metavar="ACTION", required=True)
    idn.add_parser("show", help=t("cli.identity.show")).set_defaults(run=commands.identity_show)
    idn.add_parser("rotate", help=t("cli.identity.rotate")).set_defaults(run=commands.identity_rotate)

    pw = sub.add_parser("passphrase", help=t("cli.passphrase")).add_subparsers(dest="action", metavar="ACTION", required=True)
    p = pw.add_parser("change", help=t("cli.passphrase.change"))
    p.add_argument("--new-key-file", type=Path, help=t("cli.opt.new_key_file"))
    p.set_defaults(run=commands.passphrase_change)

    p = sub.add_parser("backup", help=t("cli.backup"))
    p.add_argument("file", type=Path)
    p.set_defaults(run=commands.backup)
    p = sub.add_parser("restore", help=t("cli.restore"))
    p.add_argument("file", type=Path)
    p.add_argument("--replace", action="store_true", help=t("cli.opt.replace"))
    p.set_defaults(run=commands.restore)

    p = sub.add_parser("demo", help=t("cli.demo"))
    p.add_argument("--keep", action="store_true", help=t("cli.opt.keep"))
    p.set_defaults(run=commands.demo)
    return parser


def _early_lang(argv: list[str]) -> None:
    """Pick the language before building help texts (``--lang`` wins over the locale)."""
    for i, arg in enumerate(argv):
        if arg == "--lang" and i + 1 < len(argv):
            i18n.set_lang(argv[i + 1])
        elif arg.startswith("--lang="):
            i18n.set_lang(arg.split("=", 1)[1])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    _early_lang(argv)
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(
            {"home": args.home, "lang": args.lang, "log_level": args.log_level, "key_file": args.key_file,
             "key_env": args.key_env, "key_credential": args.key_credential},
            config_path=args.config,
        )
        i18n.set_lang(settings.lang)
        logging.basicConfig(level=settings.log_level, format="%(levelname)s %(name)s: %(message)s")
        return args.run(args, settings) or 0
    except ApplianceError as e:
        print(f"dsnode: {e.message()}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"dsnode: {i18n.t('cli.interrupted')}", file=sys.stderr)
        return 130
    except Exception as e:  # a bug: say so in one line, keep the details out of the user's way
        if os.environ.get("DSNODE_DEBUG"):
            traceback.print_exc()
        print(f"dsnode: {i18n.t('cli.internal_error', type(e).__name__)}", file=sys.stderr)
        return 70
