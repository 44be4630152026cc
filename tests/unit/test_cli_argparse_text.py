"""argparse's own words appear in the user's language on help pages and usage errors."""

from __future__ import annotations

import re

import pytest

from appliance import i18n
from edge.cli import build_parser, main


@pytest.fixture(autouse=True)
def _reset_lang():
    yield
    i18n.set_lang(None)


def _run(capsys, *argv: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as done:
        main(list(argv))
    out = capsys.readouterr()
    return done.value.code, out.out + out.err


def test_help_pages_and_usage_errors_are_in_chinese(capsys):
    code, text = _run(capsys, "--lang", "zh_CN", "status", "--help")
    assert code == 0 and text.startswith("用法：") and "选项" in text and "显示本帮助并退出" in text
    assert not re.search(r"\b(usage|options|show this help)\b", text)
    code, text = _run(capsys, "--lang", "zh_CN", "contract", "request")
    assert code == 2 and "错误：缺少以下参数：SPACE, DATASET" in text and "required" not in text
    code, text = _run(capsys, "--lang", "zh_CN", "status", "--bogus")
    assert code == 2 and "无法识别的参数：--bogus" in text


def test_in_english_argparse_is_left_as_it_is(capsys):
    code, text = _run(capsys, "--lang", "en", "contract", "request")
    assert code == 2 and "the following arguments are required: SPACE, DATASET" in text


def test_every_help_page_in_chinese_has_no_argparse_english(capsys):
    i18n.set_lang("zh_CN")
    parser = build_parser()
    pages = [parser.format_help()]
    stack = [parser]
    while stack:
        p = stack.pop()
        for action in p._actions:
            subparsers = (getattr(action, "choices", None) or {}) if hasattr(action, "_name_parser_map") else {}
            for child in subparsers.values():
                pages.append(child.format_help())
                stack.append(child)
    assert len(pages) > 40
    for page in pages:
        assert not re.search(r"\b(usage:|options:|positional arguments|show this help)", page), page[:200]
