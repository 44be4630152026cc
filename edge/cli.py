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
import threading
import traceback
from pathlib import Path

from appliance import __version__, i18n
from appliance.errors import ApplianceError, ConfigError, NodeRunning
from appliance.host.client import ControlClient
from appliance.settings import load_settings
from edge import argparse_text, forward

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
    parser.add_argument("--version", action="version", version=f"dsnode {__version__}", help=t("cli.opt.version"))
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
    try:
        return _main(sys.argv[1:] if argv is None else argv)
    except BrokenPipeError:  # `dsnode … | head`: the reader has had enough; that is not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


def _main(argv: list[str]) -> int:
    _early_lang(argv)
    args = build_parser().parse_args(argv)
    try:
        opts = vars(args)
        overrides = {name: opts.get(name) for name in ("home", "lang", "log_level", "key_file", "key_env",
                                                        "key_credential")}
        try:
            settings = load_settings(overrides, config_path=opts.get("config"))
        except ConfigError:
            if not opts.get("config_tolerant"):  # `config check` reports every problem itself
                raise
            settings = load_settings(overrides, config_path=Path(os.devnull))
        i18n.set_lang(settings.lang)
        logging.basicConfig(level=settings.log_level, format="%(levelname)s %(name)s: %(message)s")
        code = _forwarded(args, argv, settings)
    except ApplianceError as e:
        print(f"dsnode: {e.message()}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:  # the running node finishes what it started; we stop listening
        print(f"dsnode: {i18n.t('cli.interrupted')}", file=sys.stderr)
        return 130
    return code if code is not None else execute(args, settings)


def execute(args, settings) -> int:
    """Run the parsed command; an error becomes one line on stderr and its exit code."""
    try:
        return args.run(args, settings) or 0
    except ApplianceError as e:
        print(f"dsnode: {e.message()}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"dsnode: {i18n.t('cli.interrupted')}", file=sys.stderr)
        return 130
    except BrokenPipeError:
        raise
    except Exception as e:  # noqa: BLE001 - a bug: say so in one line, keep the details out of the user's way
        if os.environ.get("DSNODE_DEBUG"):
            traceback.print_exc()
        log.debug("command failed", exc_info=True)
        print(f"dsnode: {i18n.t('cli.internal_error', type(e).__name__)}", file=sys.stderr)
        return 70


def _forwarded(args, argv: list[str], settings) -> int | None:
    """When a node runs in this home, run the command in it (its exit code); None: run it here."""
    use = getattr(args, "store_use", forward.SHARED)
    if use == forward.INDEPENDENT or forward.live_node() is not None:
        return None
    client = ControlClient(settings.home, lang=i18n.get_lang())
    if not client.running():
        return None
    if use == forward.EXCLUSIVE:
        words = [w for w in (getattr(args, "command", None), getattr(args, "action", None)) if w]
        raise NodeRunning(client.pid(), settings.home, " ".join(words))

    def write(stream: str, text: str) -> None:
        target = sys.stdout if stream == "out" else sys.stderr
        target.write(text)
        target.flush()

    return client.run_cli(list(argv), os.getcwd(), i18n.get_lang(), write)


_parsers: dict[str, argparse.ArgumentParser] = {}
_parsers_lock = threading.Lock()


def parse_in_node(argv: list[str]) -> argparse.Namespace:
    """Parse a forwarded command line in the running node (one parser per language, built once)."""
    lang = i18n.get_lang()
    with _parsers_lock:
        parser = _parsers.get(lang)
        if parser is None:
            parser = _parsers[lang] = build_parser()
    return parser.parse_args(argv)


def command_runner(node, settings):
    """What a NodeHost runs for ``POST /v1/cli``: this CLI's handlers on the running node."""
    return forward.runner(node, settings, execute, parse_in_node)
