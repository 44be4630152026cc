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
