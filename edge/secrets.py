"""Where the CLI gets the store passphrase: a key source named on the command line or in settings,
otherwise a prompt on the terminal (twice when a new passphrase is set)."""

from __future__ import annotations

import getpass
import sys

from appliance import i18n
from appliance.errors import NoPassphrase, PassphraseMismatch, PassphraseTooShort
from appliance.settings import Settings
from appliance.storage.keysource import EnvVar, KeyFile, SystemdCredential

MIN_PASSPHRASE = 8


def configured_source(settings: Settings):
    if settings.key_file:
        return KeyFile(settings.key_file)
    if settings.key_env:
        return EnvVar(settings.key_env)
    if settings.key_credential:
        return SystemdCredential(settings.key_credential)
    return None


def _ask(prompt: str) -> bytes:
    if not sys.stdin.isatty():
        raise NoPassphrase()
    return getpass.getpass(prompt).encode("utf-8")


def current_passphrase(settings: Settings) -> bytes:
    source = configured_source(settings)
    if source is not None:
        return source.read()
    return _ask(i18n.t("prompt.passphrase"))


def new_passphrase(settings: Settings, source=None, *, use_configured: bool = True) -> bytes:
    """A passphrase for a new store or a passphrase change: from ``source``, or typed twice.

    A passphrase change never reuses the configured source: that is where the old one came from.
    """
    if source is None and use_configured:
        source = configured_source(settings)
    if source is not None:
        value = source.read()
    else:
        value = _ask(i18n.t("prompt.new_passphrase"))
        if _ask(i18n.t("prompt.repeat_passphrase")) != value:
            raise PassphraseMismatch()
    if len(value.decode("utf-8", "replace")) < MIN_PASSPHRASE:
        raise PassphraseTooShort(MIN_PASSPHRASE)
    return value
