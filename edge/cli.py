"""`dsnode`: the command line. Parses arguments, configures logging, turns errors into one line.

Every command calls the `Node` API; nothing here knows about SQL, keys or the Merkle tree.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import pkgutil
import sys
import traceback
from pathlib import Path

from appliance import __version__, i18n
from appliance.errors import ApplianceError
from appliance.settings import load_settings
from edge import argparse_text

log = logging.getLogger(__name__)



def command_modules() -> list[str]:
    """``edge/cmd_*.py``: each adds its command groups with ``register(subparsers)``."""
    import edge

    names = sorted(m.name for m in pkgutil.iter_modules(edge.__path__) if m.name.startswith("cmd_"))
    return ["edge.cmd_node"] + [f"edge.{n}" for n in names if n != "cmd_node"]


def build_parser() -> argparse.ArgumentParser:
    t = i18n.t
    argparse_text.install()
    parser = argparse.ArgumentParser(prog="dsnode", description=t("cli.description"))
    parser.add_argument("--version", action="version", version=f"dsnode {__version__}")
    _global_options(parser, argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in command_modules():
        importlib.import_module(name).register(sub)
    for command in _all_subparsers(parser):  # `dsnode demo --lang en` works as well as `dsnode --lang en demo`
        _global_options(command, argparse.SUPPRESS)
    return parser


def _global_options(parser: argparse.ArgumentParser, default) -> None:
    t = i18n.t
    parser.add_argument("--home", type=Path, default=default, help=t("cli.opt.home"))
    parser.add_argument("--config", type=Path, default=default, help=t("cli.opt.config"))
    parser.add_argument("--lang", choices=i18n.LANGS, default=default, help=t("cli.opt.lang"))
    parser.add_argument("--key-file", type=Path, default=default, help=t("cli.opt.key_file"))
    parser.add_argument("--key-env", metavar="VAR", default=default, help=t("cli.opt.key_env"))
    parser.add_argument("--key-credential", metavar="NAME", default=default, help=t("cli.opt.key_credential"))
    parser.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"], default=default,
                        help=t("cli.opt.log_level"))


def _all_subparsers(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                yield child
                yield from _all_subparsers(child)


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
        opts = vars(args)
        settings = load_settings(
            {name: opts.get(name) for name in ("home", "lang", "log_level", "key_file", "key_env", "key_credential")},
            config_path=opts.get("config"),
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
    except Exception as e:  # noqa: BLE001 - a bug: say so in one line, keep the details out of the user's way
        if os.environ.get("DSNODE_DEBUG"):
            traceback.print_exc()
        print(f"dsnode: {i18n.t('cli.internal_error', type(e).__name__)}", file=sys.stderr)
        return 70
