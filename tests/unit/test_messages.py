"""Every user-facing message exists in zh_CN and en, and every error has its own exit code."""

import re
import string
from pathlib import Path

import appliance.errors as errors
from appliance import i18n

ROOT = Path(__file__).resolve().parents[2]


def _error_classes():
    """Every ApplianceError subclass anywhere in the core (features may define their own)."""
    import importlib
    import pkgutil

    import appliance

    for mod in pkgutil.walk_packages(appliance.__path__, "appliance."):
        importlib.import_module(mod.name)
    found, todo = [], [errors.ApplianceError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def _fields(text: str) -> int:
    return sum(1 for _, name, _, _ in string.Formatter().parse(text) if name is not None)


def test_every_error_has_chinese_text_with_the_same_placeholders():
    for cls in _error_classes():
        zh = i18n.lookup(f"error.{cls.__name__}", "zh_CN")
        assert zh, f"{cls.__name__} has no zh_CN message"
        assert _fields(zh) == _fields(cls.__doc__), cls.__name__


def test_exit_codes_are_distinct_and_not_reserved():
    codes = [c.exit_code for c in _error_classes()]
    assert len(codes) == len(set(codes))
    assert all(c not in (0, 2, 70, 130) for c in codes)


def test_every_translated_key_in_the_code_exists_in_both_languages():
    used = set()
    for path in list(ROOT.glob("appliance/**/*.py")) + list(ROOT.glob("edge/**/*.py")) + list(ROOT.glob("ui/**/*.py")):
        text = path.read_text(encoding="utf-8")
        used |= set(re.findall(r"""\b(?:t|LocalText)\(\s*["']([a-z_]+\.[a-zA-Z0-9_.]+)["']""", text))
        used |= {f"store.reason.{k}" for k in re.findall(r"""\bstore_reason\(\s*["']([a-z_]+)["']""", text)}
    assert used, "no translated strings found"
    for lang in i18n.LANGS:
        missing = sorted(k for k in used if i18n.lookup(k, lang) is None)
        assert not missing, f"{lang} lacks {missing}"


def test_the_exit_code_table_in_the_operations_guide_is_complete():
    guide = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    for cls in _error_classes():
        assert f"| {cls.exit_code} | `{cls.__name__}`" in guide, f"docs/operations.md lacks {cls.__name__}"


def test_both_catalogs_have_the_same_keys_and_placeholders():
    en, zh = i18n.catalog("en"), i18n.catalog("zh_CN")
    assert set(en) - set(zh) == set()
    for key, text in en.items():
        assert _fields(text) == _fields(zh[key]), key


def test_an_error_speaks_the_chosen_language():
    err = errors.StoreNotFound("/srv/node")
    assert "dsnode init" in err.message("en") and "/srv/node" in err.message("en")
    assert "找不到" in err.message("zh_CN")


def test_locale_detection_defaults_to_chinese():
    assert i18n.detect_lang({}) == "zh_CN"
    assert i18n.detect_lang({"LANG": "C.UTF-8"}) == "zh_CN"
    assert i18n.detect_lang({"LANG": "en_GB.UTF-8"}) == "en"
    assert i18n.detect_lang({"LANGUAGE": "zh_TW:en"}) == "zh_CN"
