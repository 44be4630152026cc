"""A Chinese user reads no English prose inside an error: details are data, not sentences.

Every error of the ``appliance.errors`` tree is built from its own template (translated) and
arguments. An argument that is an English sentence ("the code is damaged or incomplete") shows up
verbatim inside the Chinese template, so the rule checked here is: no string literal with two or
more English words is passed to an error's constructor. Pass a ``LocalText("feature.reason.key",
…)`` instead (both catalogs hold the key), or a name, id, path or number.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import appliance.errors as errors
from appliance import i18n
from appliance.errors import LocalText

ROOT = Path(__file__).resolve().parents[2]
WORDS = re.compile(r"[A-Za-z]{2,}[ ,;:'’-]+[A-Za-z]{2,}")
# the command names and literal tokens users type are not prose
ALLOWED = re.compile(r"`[^`]*`|--[a-z][a-z-]*|\bdid:key\b|\bdsnode\b [a-z-]+( [a-z-]+)?")

# Files whose errors still carry English details, being converted; this set may only shrink.
PENDING: set[str] = set()


def _error_names() -> set[str]:
    return {n for n, c in vars(errors).items() if isinstance(c, type) and issubclass(c, errors.ApplianceError)}


def _prose(text: str) -> bool:
    return bool(WORDS.search(ALLOWED.sub(" ", text)))


def english_details(path: Path, names: set[str]) -> list[str]:
    """``line: Error("…")`` for each error built with an English sentence among its arguments."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None
        if name not in names:
            continue
        for arg in node.args:
            texts = [s.value for s in ast.walk(arg) if isinstance(s, ast.Constant) and isinstance(s.value, str)]
            if any(_prose(t) for t in texts):
                found.append(f"{node.lineno}: {name}({ast.unparse(arg)[:80]})")
                break
    return found


def _sources() -> list[Path]:
    return sorted(ROOT.glob("appliance/**/*.py")) + sorted(ROOT.glob("edge/**/*.py"))


def test_no_error_carries_an_english_sentence_as_its_detail():
    names = _error_names()
    bad = {}
    for path in _sources():
        rel = path.relative_to(ROOT).as_posix()
        if rel in PENDING:
            continue
        hits = english_details(path, names)
        if hits:
            bad[rel] = hits
    assert not bad, "pass LocalText(key, …) instead of English prose:\n" + "\n".join(
        f"{p}:{h}" for p, hits in bad.items() for h in hits)


def test_the_list_of_files_being_converted_only_shrinks():
    names = _error_names()
    done = sorted(p for p in PENDING if not english_details(ROOT / p, names))
    assert not done, f"these files are clean now: remove them from PENDING: {done}"


def test_the_check_catches_a_sentence_and_lets_names_through(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text('raise ConfigError("the value is wrong")\n'
                      'raise ConfigError(LocalText("config.reason.bad", "x"))\n'
                      'raise StoreNotFound(home)\n'
                      'raise ConfigError("`dsnode init`")\n', encoding="utf-8")
    hits = english_details(sample, _error_names())
    assert [h.split(":")[0] for h in hits] == ["1"]


def test_reason_keys_render_in_chinese_without_english_words():
    """Every ``*.reason.*`` text in zh_CN is Chinese (names in backquotes and placeholders aside)."""
    catalog = i18n.catalog("zh_CN") if hasattr(i18n, "catalog") else None
    if catalog is None:
        import json

        catalog = {}
        for p in sorted((ROOT / "assets" / "i18n" / "zh_CN").glob("*.json")):
            catalog.update(json.loads(p.read_text(encoding="utf-8")))
    english = {k: v for k, v in catalog.items()
               if ".reason." in k and _prose(re.sub(r"\{[^}]*\}", " ", v))}
    assert not english, f"English inside Chinese reasons: {english}"
    assert LocalText("store.reason.cannot_read", "x").message("zh_CN") != LocalText(
        "store.reason.cannot_read", "x").message("en")
