"""User-facing text in zh_CN (the default) and English.

Catalogs are flat JSON files in ``assets/i18n/{lang}/*.json``, one per feature (``core.json``,
``catalog.json``, …), merged at load; a key defined twice is a bug and raises. Error templates are the docstrings of
the classes in :mod:`appliance.errors` (English) with their Chinese text under ``error.<Class>``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache

from appliance.resources import assets_dir

LANGS = ("zh_CN", "en")
DEFAULT_LANG = "zh_CN"

_current: str | None = None
# a running node serves requests of users with different languages at once: each request's thread
# sets its own, and the process-wide choice stays the daemon's
_request: ContextVar[str | None] = ContextVar("dsnode_lang", default=None)


def normalize(lang: str | None) -> str | None:
    """Map a locale string such as ``en_US.UTF-8`` or ``zh-CN`` to one of :data:`LANGS`."""
    if not lang:
        return None
    code = lang.split(".")[0].replace("-", "_").lower()
    if code in ("c", "posix"):
        return None
    if code.startswith("en"):
        return "en"
    if code.startswith("zh"):
        return "zh_CN"
    return None


def detect_lang(env: Mapping[str, str] | None = None) -> str:
    """The language the user's locale asks for, zh_CN when it names neither language."""
    env = os.environ if env is None else env
    for var in ("DSNODE_LANG", "LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        for part in env.get(var, "").split(":"):
            lang = normalize(part)
            if lang:
                return lang
    return DEFAULT_LANG


def set_lang(lang: str | None) -> None:
    global _current
    _current = normalize(lang) if lang else None


def get_lang() -> str:
    return _request.get() or _current or detect_lang()


@contextmanager
def using_lang(lang: str | None) -> Iterator[None]:
    """Speak ``lang`` in this thread (context) until the block ends; other threads keep theirs."""
    token = _request.set(normalize(lang) if lang else None)
    try:
        yield
    finally:
        _request.reset(token)


@lru_cache(maxsize=None)
def catalog(lang: str) -> dict[str, str]:
    merged: dict[str, str] = {}
    for path in sorted((assets_dir() / "i18n" / lang).glob("*.json")):
        with open(path, encoding="utf-8") as f:
            part = json.load(f)
        twice = set(part) & set(merged)
        if twice:
            raise ValueError(f"{path} defines {sorted(twice)} again")
        merged.update(part)
    return merged


def lookup(key: str, lang: str | None = None) -> str | None:
    return catalog(lang or get_lang()).get(key)


def t(key: str, *args: object, lang: str | None = None, **kwargs: object) -> str:
    """Translate ``key`` and format it; falls back to English, then to the key itself."""
    lang = lang or get_lang()
    text = lookup(key, lang) or lookup(key, "en") or key
    if not (args or kwargs):
        return text
    try:
        return text.format(*args, **kwargs)
    except (IndexError, KeyError, ValueError):  # a translation's placeholders are wrong: still say it
        english = lookup(key, "en") or key
        try:
            return english.format(*args, **kwargs)
        except (IndexError, KeyError, ValueError):
            return " ".join([text, *map(str, args)])
