"""`dsnode config check|show`: the settings file (``dsnode.toml``) checked line by line, and the
settings in effect with where each comes from. Neither opens the store."""

from __future__ import annotations

import os
from dataclasses import fields
from pathlib import Path

from appliance import i18n
from appliance.errors import ConfigError
from appliance.settings import UNSET_MEANS, ENV_NAMES, Settings, check_config, default_config_path
from edge import forward

t = i18n.t


def config_path(args) -> Path:
    given = getattr(args, "config", None)
    if given:
        return Path(given)
    return Path(os.environ["DSNODE_CONFIG"]) if os.environ.get("DSNODE_CONFIG") else default_config_path()


def check(args, settings) -> int:
    path = config_path(args)
    problems = check_config(path)
    if not path.is_file():
        print(problems[0].text.message())
        return 0
    if not problems:
        print(t("config.valid", path))
        return 0
    print(t("config.problems", len(problems), path))
    for p in problems:
        where = f"{path.name}:{p.line}" if p.line else path.name
        print(f"  {where}: {p.text.message()}")
    return ConfigError.exit_code


def show(args, settings: Settings) -> int:
    path = config_path(args)
    from_file: set[str] = set()
    if path.is_file():
        import tomllib

        try:
            from_file = set(tomllib.loads(path.read_text(encoding="utf-8")))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError):
            from_file = set()
    print(t("config.effective"))
    given = {name for name in ENV_NAMES if getattr(args, name, None) is not None}
    for f in fields(Settings):
        value = getattr(settings, f.name)
        env = ENV_NAMES.get(f.name)
        source = ("--" + f.name.replace("_", "-") if f.name in given else env if env and os.environ.get(env)
                  else path.name if f.name in from_file else t("config.default"))
        if f.name == "broker":
            print(f"  [broker]  [{source}]")
            for limit in fields(value):
                print(f"    {limit.name:<26} {getattr(value, limit.name)}")
            continue
        if f.name == "watch":
            value = ", ".join(str(w.folder) for w in value) or "-"
        if value in (None, "", ()) and f.name in UNSET_MEANS:
            value = t(f"config.default.{f.name}")
        print(f"  {f.name:<15} {value}  [{source}]")
    return 0


def register(sub) -> None:
    group = sub.add_parser("config", help=t("cli.config")).add_subparsers(dest="action", metavar="ACTION",
                                                                        required=True)
    p = group.add_parser("check", help=t("cli.config.check"))
    p.set_defaults(run=check, store_use=forward.INDEPENDENT, config_tolerant=True)
    p = group.add_parser("show", help=t("cli.config.show"))
    p.set_defaults(run=show, store_use=forward.INDEPENDENT)

