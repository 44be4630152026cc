"""Typed settings: TOML file, then environment, then command line (each overrides the one before).

Everything a service needs (paths, timers, KDF cost) comes from here and is passed in, so tests
never patch module globals.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import platformdirs

from appliance.errors import ConfigError, LocalText
from appliance.net.broker.limits import BrokerLimits

KDF_PROFILES = ("moderate", "interactive", "minimum")


@dataclass(frozen=True)
class WatchFolder:
    """A ``[[watch]]`` table: files that appear or change in ``folder`` become resource versions."""

    folder: Path
    pattern: str = "*"  # which file names (a glob); hidden and partial files (.tmp, .part, ~) never
    settle_seconds: float = 5.0  # a file is taken once its size and time stay the same this long
    poll_seconds: float = 2.0
    mode: str = "hosted"  # hosted: a copy in the encrypted vault; referenced: the file where it is
    title: str = "{stem}"  # {name} and {stem} are the file's name with and without its suffix
    category: str | None = None  # labels: general, important or core
    sensitivity: int | None = None  # 1-4
    masking: tuple[dict, ...] = ()  # masking rules, as in `dsnode resource mask`
    product: bool = False  # also make a draft product of each new resource
    offer_template: str | None = None  # … with an offer from this template (`dsnode product templates`)
    offer_params: dict | None = None
    list_in: tuple[str, ...] = ()  # … and ask to list it in these spaces

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> WatchFolder:
        """ValueError naming the first bad entry (unknown name, wrong type or value)."""
        known = {f.name: f for f in fields(cls)}
        for name in values:
            if name not in known:
                raise ValueError(f"unknown watch setting {name!r} (known: {', '.join(sorted(known))})")
        if not isinstance(values.get("folder"), str) or not values["folder"]:
            raise ValueError("a [[watch]] table needs folder = \"/path/to/folder\"")
        out: dict[str, Any] = {"folder": Path(os.path.expanduser(values["folder"]))}
        for name in ("pattern", "mode", "title", "category", "offer_template"):
            if name in values:
                if not isinstance(values[name], str):
                    raise ValueError(f"watch setting {name} must be text, not {values[name]!r}")
                out[name] = values[name]
        for name in ("settle_seconds", "poll_seconds"):
            if name in values:
                v = values[name]
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 86400:
                    raise ValueError(f"watch setting {name} must be a number of seconds from 0 to 86400, not {v!r}")
                out[name] = float(v)
        try:
            out.get("title", "{stem}").format(name="x.csv", stem="x")
        except (KeyError, IndexError, ValueError):
            raise ValueError("watch setting title may use {name} and {stem} only, e.g. \"Line 3 {stem}\"") from None
        if out.get("mode", "hosted") not in ("hosted", "referenced"):
            raise ValueError(f"watch setting mode must be hosted or referenced, not {out['mode']!r}")
        if "sensitivity" in values:
            v = values["sensitivity"]
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 4:
                raise ValueError(f"watch setting sensitivity must be 1, 2, 3 or 4, not {v!r}")
            out["sensitivity"] = v
        if "masking" in values:
            if not isinstance(values["masking"], list) or not all(isinstance(r, dict) for r in values["masking"]):
                raise ValueError("watch setting masking must be a list of rules, e.g. [{column = \"phone\", "
                                 "rule = \"mask\"}]")
            out["masking"] = tuple(values["masking"])
        if "product" in values:
            if not isinstance(values["product"], bool):
                raise ValueError(f"watch setting product must be true or false, not {values['product']!r}")
            out["product"] = values["product"]
        if "offer_params" in values:
            if not isinstance(values["offer_params"], dict):
                raise ValueError("watch setting offer_params must be a table")
            out["offer_params"] = dict(values["offer_params"])
        if "list_in" in values:
            v = values["list_in"]
            if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
                raise ValueError("watch setting list_in must be a list of space ids")
            out["list_in"] = tuple(v)
        return cls(**out)


@dataclass(frozen=True)
class Settings:
    home: Path
    lang: str | None = None
    log_level: str = "WARNING"
    kdf_profile: str = "moderate"
    node_name: str = ""
    key_file: Path | None = None
    key_env: str | None = None
    key_credential: str | None = None
    broker: BrokerLimits = BrokerLimits()  # the ``[broker]`` table: what the space's broker bounds
    watch: tuple[WatchFolder, ...] = ()  # the ``[[watch]]`` tables: folders that become resources
    interfaces: tuple[str, ...] = ()  # IP addresses of this machine to find peers and serve data on (none: off)

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


ENV_NAMES = {
    "home": "DSNODE_HOME",
    "lang": "DSNODE_LANG",
    "log_level": "DSNODE_LOG_LEVEL",
    "kdf_profile": "DSNODE_KDF_PROFILE",
    "key_file": "DSNODE_KEY_FILE",
    "key_env": "DSNODE_KEY_ENV",
    "key_credential": "DSNODE_KEY_CREDENTIAL",
}


def default_home() -> Path:
    return platformdirs.user_data_path("dsnode", appauthor=False)


def default_config_path() -> Path:
    return platformdirs.user_config_path("dsnode", appauthor=False) / "dsnode.toml"


def _coerce(name: str, value: Any) -> Any:
    if name in ("home", "key_file"):
        return Path(os.path.expanduser(str(value)))
    if name == "broker":
        if isinstance(value, BrokerLimits):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(LocalText("settings.reason.broker_not_table", repr(value)))
        try:
            return BrokerLimits.from_mapping(value)
        except ValueError as e:
            raise ConfigError(LocalText("settings.reason.broker_limit", str(e))) from None
    if name == "watch":
        if isinstance(value, tuple) and all(isinstance(w, WatchFolder) for w in value):
            return value
        if not isinstance(value, list) or not all(isinstance(w, Mapping) for w in value):
            raise ConfigError(LocalText("settings.reason.watch_not_tables"))
        try:
            return tuple(WatchFolder.from_mapping(w) for w in value)
        except ValueError as e:
            raise ConfigError(LocalText("settings.reason.watch", str(e))) from None
    if name == "interfaces":
        if isinstance(value, tuple):
            return value
        if not isinstance(value, list) or not all(isinstance(a, str) and a for a in value):
            raise ConfigError(LocalText("settings.reason.interfaces"))
        return tuple(value)
    if name == "kdf_profile" and value not in KDF_PROFILES:
        raise ConfigError(LocalText("settings.reason.kdf_profile", ", ".join(KDF_PROFILES), repr(value)))
    if not isinstance(value, str):
        raise ConfigError(LocalText("settings.reason.not_text", name, repr(value)))
    return value


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    config_path: Path | None = None,
) -> Settings:
    """Build settings from the TOML file (if any), the environment, then ``overrides``."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    path = config_path or (Path(env["DSNODE_CONFIG"]) if env.get("DSNODE_CONFIG") else default_config_path())
    if path.is_file():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise ConfigError(LocalText("settings.reason.not_toml", path, str(e))) from None
        known = {f.name for f in fields(Settings)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(LocalText("settings.reason.unknown", path, ", ".join(unknown)))
        values.update(data)
    values.update({name: env[var] for name, var in ENV_NAMES.items() if env.get(var)})
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    values = {k: _coerce(k, v) for k, v in values.items()}
    values.setdefault("home", default_home())
    return Settings(**values)


# --- `dsnode config check`: every problem of a settings file, with its line and what to write ---


@dataclass(frozen=True)
class ConfigProblem:
    line: int | None  # 1-based line in the file, None when the problem is not on one line
    text: LocalText


# what an unset setting means, for `dsnode config show` (catalog keys config.default.<name>)
UNSET_MEANS = ("home", "lang", "node_name", "key_file", "key_env", "key_credential", "interfaces")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def check_config(path: Path) -> list[ConfigProblem]:
    """All problems of the settings file at ``path`` (an empty list: it is valid)."""
    import difflib
    import re

    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return [ConfigProblem(None, LocalText("settings.check.missing", path))]
    except (OSError, UnicodeDecodeError) as e:
        return [ConfigProblem(None, LocalText("settings.check.unreadable", path, type(e).__name__))]
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"at line (\d+)", str(e))
        return [ConfigProblem(int(m.group(1)) if m else None, LocalText("settings.check.syntax", str(e)))]
    lines = text.splitlines()

    def line_of(key: str, table: str | None = None) -> int | None:
        inside = table is None
        for i, raw in enumerate(lines, 1):
            stripped = raw.strip()
            if stripped.startswith("["):
                inside = stripped.strip("[] ") == table
                if table is None:
                    return None  # top-level keys come before the first table
                continue
            if inside and re.match(rf"{re.escape(key)}\s*=", stripped):
                return i
        return None

    def suggest(key: str, known) -> LocalText:
        close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
        if close:
            return LocalText("settings.check.did_you_mean", close[0])
        return LocalText("settings.check.known", ", ".join(sorted(known)))

    problems: list[ConfigProblem] = []
    known = {f.name for f in fields(Settings)}
    for key, value in data.items():
        if key not in known:
            table_line = next((i for i, r in enumerate(lines, 1) if r.strip().strip("[] ") == key
                               and r.strip().startswith("[")), None)
            problems.append(ConfigProblem(line_of(key) or table_line,
                                          LocalText("settings.check.unknown", key, suggest(key, known))))
            continue
        if key == "broker" and isinstance(value, Mapping):
            limits = {f.name for f in fields(BrokerLimits)}
            for name, v in value.items():
                if name not in limits:
                    problems.append(ConfigProblem(line_of(name, "broker"), LocalText(
                        "settings.check.unknown_limit", name, suggest(name, limits))))
                elif isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 2**40:
                    problems.append(ConfigProblem(line_of(name, "broker"), LocalText(
                        "settings.check.limit_value", name, repr(v), getattr(BrokerLimits, name))))
            continue
        if key == "watch" and isinstance(value, list):
            starts = [i for i, r in enumerate(lines, 1) if r.strip().replace(" ", "") == "[[watch]]"]
            for n, entry in enumerate(value):
                try:
                    WatchFolder.from_mapping(entry if isinstance(entry, Mapping) else {})
                except ValueError as e:
                    problems.append(ConfigProblem(starts[n] if n < len(starts) else None,
                                                  LocalText("settings.reason.watch", str(e))))
            continue
        if key == "log_level" and value not in LOG_LEVELS:
            problems.append(ConfigProblem(line_of(key), LocalText("settings.check.choice", key, repr(value),
                                                                  ", ".join(LOG_LEVELS))))
            continue
        if key == "lang" and value not in ("zh_CN", "en"):
            problems.append(ConfigProblem(line_of(key), LocalText("settings.check.choice", key, repr(value),
                                                                  "zh_CN, en")))
            continue
        try:
            _coerce(key, value)
        except ConfigError as e:
            problems.append(ConfigProblem(line_of(key), e.args[0] if e.args and isinstance(e.args[0], LocalText)
                                          else LocalText("settings.check.bad_value", key, repr(value))))
    key_file = data.get("key_file")
    if isinstance(key_file, str) and not any(p.line == line_of("key_file") for p in problems):
        kf = Path(os.path.expanduser(key_file))
        if not kf.is_file():
            problems.append(ConfigProblem(line_of("key_file"), LocalText("settings.check.key_missing", kf)))
        elif kf.stat().st_mode & 0o077:
            problems.append(ConfigProblem(line_of("key_file"), LocalText("settings.check.key_open", kf)))
    return sorted(problems, key=lambda p: (p.line is None, p.line or 0))


# --- changing the settings file (the desktop app's Settings page) ------------------------------

# top-level settings a program may change; tables ([broker], [[watch]]) are edited by hand. The
# running node reads the file when it starts: a change applies from the next start.
WRITABLE = ("lang", "log_level", "kdf_profile", "node_name", "key_file", "key_env", "key_credential", "interfaces")
_LANGS = ("zh_CN", "en")


def config_file(env: Mapping[str, str] | None = None) -> Path:
    """The settings file that :func:`load_settings` reads when no path is given."""
    env = os.environ if env is None else env
    return Path(env["DSNODE_CONFIG"]) if env.get("DSNODE_CONFIG") else default_config_path()


def write_settings(path: Path, changes: Mapping[str, Any]) -> None:
    """Set top-level settings in the file at ``path`` (a value of None removes one), keeping every
    other line as it is, comments and tables too. Values are checked as :func:`load_settings`
    checks them and the whole file must still load; a ConfigError names what is wrong and the
    file is left unchanged. The file is replaced in one step (never half written)."""
    bad = sorted(set(changes) - set(WRITABLE))
    if bad:
        raise ConfigError(LocalText("settings.reason.unknown", path, ", ".join(bad)))
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8") if path.exists() else ""
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(LocalText("settings.check.unreadable", path, type(e).__name__)) from None
    lines = text.splitlines()
    for name, value in changes.items():
        lines = _set_line(lines, name, None if value is None else f"{name} = {_toml_value(name, value)}")
    new_text = "\n".join(lines) + "\n" if lines else ""
    try:
        data = tomllib.loads(new_text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(LocalText("settings.reason.not_toml", path, str(e))) from None
    for name in changes:
        if name in data:
            _check_written(name, data[name])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it may name where the key is
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(new_text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _toml_value(name: str, value: Any) -> str:
    import json

    if isinstance(value, (list, tuple)):
        if not all(isinstance(v, str) for v in value):
            if name == "interfaces":
                raise ConfigError(LocalText("settings.reason.interfaces"))
            raise ConfigError(LocalText("settings.reason.not_text", name, repr(value)))
        return "[" + ", ".join(json.dumps(v, ensure_ascii=False) for v in value) + "]"
    if isinstance(value, Path):
        value = str(value)
    if not isinstance(value, str):
        raise ConfigError(LocalText("settings.reason.not_text", name, repr(value)))
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string


def _check_written(name: str, value: Any) -> None:
    if name == "log_level" and value not in LOG_LEVELS:
        raise ConfigError(LocalText("settings.check.choice", name, repr(value), ", ".join(LOG_LEVELS)))
    if name == "lang" and value not in _LANGS:
        raise ConfigError(LocalText("settings.check.choice", name, repr(value), ", ".join(_LANGS)))
    if name == "key_credential" and ("/" in value or value in ("", ".", "..")):
        raise ConfigError(LocalText("settings.check.bad_value", name, repr(value)))
    if name == "interfaces":
        import ipaddress

        for address in value:
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise ConfigError(LocalText("settings.reason.interfaces")) from None
    _coerce(name, value)


def _set_line(lines: list[str], name: str, new: str | None) -> list[str]:
    """``lines`` with the top-level ``name = …`` (which may span lines, as an array can) replaced by
    ``new``, or removed when ``new`` is None; a new setting goes after the last top-level one."""
    import re

    first_table = next((i for i, raw in enumerate(lines) if raw.lstrip().startswith("[")), len(lines))
    start = next((i for i in range(first_table) if re.match(rf"\s*{re.escape(name)}\s*=", lines[i])), None)
    if start is None:
        if new is None:
            return lines
        at = first_table
        while at > 0 and not lines[at - 1].strip():
            at -= 1
        return [*lines[:at], new, *([""] if at < len(lines) and at == first_table else []), *lines[at:]]
    end = start
    while end < len(lines) - 1:  # the value ends where the lines so far parse as one TOML setting
        try:
            tomllib.loads("\n".join(lines[start:end + 1]))
            break
        except tomllib.TOMLDecodeError:
            end += 1
    return [*lines[:start], *([new] if new is not None else []), *lines[end + 1:]]
