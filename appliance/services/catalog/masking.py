"""Masking rules as data, and the one streaming engine that applies them.

A rule is a JSON object naming a column, the rule and its parameters::

    {"column": "mobile",  "rule": "mask", "keep_first": 3, "keep_last": 4}     138****5678
    {"column": "note",    "rule": "replace", "value": "***"}
    {"column": "id_no",   "rule": "pseudonymise", "length": 16}                 HMAC-SHA256 token
    {"column": "day",     "rule": "generalise", "to": "month"}                  2026-03
    {"column": "amount",  "rule": "generalise", "to": "range", "width": 100}    200~300
    {"column": "address", "rule": "generalise", "to": "city"}                   广东省深圳市
    {"column": "remark",  "rule": "truncate", "length": 10}
    {"column": "secret",  "rule": "drop"}
    {"column": "plate",   "rule": "keep"}                                        as it is (delivered in clear)

``Masker(columns, rules, pseudonym_key=...)`` compiles them once; ``masker.apply(rows)`` maps an
iterable of rows (sequences in column order) to masked rows lazily, so memory does not grow with
the data. Delivery and compute-to-data use the same engine. Keyed pseudonymisation uses the key
of one agreement: the same value gives the same token within that agreement and unrelated tokens
in another. Anything a rule cannot interpret (a "date" that is not one) becomes ``*``: a
generalisation never lets an unrecognised value through.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import reprlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from appliance.errors import InvalidMaskingRule, LocalText, shown

UNKNOWN = "*"
RULES = ("mask", "replace", "pseudonymise", "generalise", "truncate", "drop", "keep")
GENERALISE_TO = ("month", "year", "range", "city", "province")
_PARAMS: dict[str, dict[str, type | tuple]] = {
    "mask": {"keep_first": int, "keep_last": int, "char": str},
    "replace": {"value": str},
    "pseudonymise": {"length": int, "prefix": str},
    "generalise": {"to": str, "width": (int, float)},
    "truncate": {"length": int},
    "drop": {},
    "keep": {},  # the provider decided this sensitive column goes in clear (delivery asks for a decision)
}


@dataclass(frozen=True)
class MaskRule:
    column: str
    rule: str
    params: tuple[tuple[str, Any], ...] = ()

    def get(self, name: str, default: Any = None) -> Any:
        return dict(self.params).get(name, default)

    def to_json(self) -> dict:
        return {"column": self.column, "rule": self.rule, **dict(self.params)}


def parse_rule(data: dict) -> MaskRule:
    """A rule from its JSON form; InvalidMaskingRule says what is wrong."""
    if not isinstance(data, dict):
        raise InvalidMaskingRule(LocalText("resource.reason.rule_not_object", _shown(data)))
    column, rule = data.get("column"), data.get("rule")
    if not isinstance(column, str) or not column:
        raise InvalidMaskingRule(LocalText("resource.reason.rule_no_column"))
    if rule not in RULES:
        raise InvalidMaskingRule(LocalText("resource.reason.unknown_rule", _shown(rule), ", ".join(RULES)))
    params = {k: v for k, v in data.items() if k not in ("column", "rule")}
    allowed = _PARAMS[rule]
    for name, value in params.items():
        if name not in allowed:
            raise InvalidMaskingRule(LocalText("resource.reason.no_parameter", rule, _shown(name)))
        if isinstance(value, bool) or not isinstance(value, allowed[name]):
            raise InvalidMaskingRule(LocalText("resource.reason.wrong_type", name, rule, _shown(value)))
    _check_values(rule, params)
    return MaskRule(column, rule, tuple(sorted(params.items())))


def _shown(value: Any) -> str:
    """A value the user gave, as a message names it (quoted and shortened; a container abbreviated)."""
    return shown(value) if isinstance(value, str | int | float) or value is None else reprlib.repr(value)


def _check_values(rule: str, p: dict) -> None:
    if any(isinstance(v, int) and v < 0 for v in p.values()):
        raise InvalidMaskingRule(LocalText("resource.reason.negative", rule))
    if rule == "mask" and len(p.get("char", "*")) != 1:
        raise InvalidMaskingRule(LocalText("resource.reason.mask_char"))
    if rule == "pseudonymise" and not 8 <= p.get("length", 16) <= 64:
        raise InvalidMaskingRule(LocalText("resource.reason.pseudonym_length", 8, 64))
    if rule == "generalise":
        if p.get("to") not in GENERALISE_TO:
            raise InvalidMaskingRule(LocalText("resource.reason.generalise_to", ", ".join(GENERALISE_TO)))
        if p.get("width", 10) <= 0:
            raise InvalidMaskingRule(LocalText("resource.reason.generalise_width"))


def parse_rules(items: Iterable[dict]) -> list[MaskRule]:
    rules = [parse_rule(item) for item in items]
    seen: set[str] = set()
    for r in rules:
        if r.column in seen:
            raise InvalidMaskingRule(LocalText("resource.reason.two_rules", r.column))
        seen.add(r.column)
    return rules


# --- the rules' functions ----------------------------------------------------------------------


def _text(value: Any) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes | bytearray):
        return bytes(value).hex()
    return str(value)


def mask(value: str, keep_first: int = 0, keep_last: int = 0, char: str = "*") -> str:
    """Keep the first and last characters; a value too short for both keeps only its first one."""
    n = len(value)
    if keep_first + keep_last >= n:
        keep_first, keep_last = (1 if keep_first and n > 1 else 0), 0
    return value[:keep_first] + char * (n - keep_first - keep_last) + (value[n - keep_last:] if keep_last else "")


def pseudonym(value: str, key: bytes, length: int = 16, prefix: str = "") -> str:
    return prefix + hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()[:length]


_YEAR_MONTH = re.compile(r"\s*(\d{4})\s*[-/.年]\s*(\d{1,2})(?!\d)")
_COMPACT_DATE = re.compile(r"\s*(\d{4})(\d{2})(\d{2})(?:\D|$)")


def _year_month(value: Any) -> tuple[int, int] | None:
    if isinstance(value, datetime | date):
        return value.year, value.month
    text = _text(value)
    m = _YEAR_MONTH.match(text) or _COMPACT_DATE.match(text)
    if not m or not 1 <= int(m.group(2)) <= 12:
        return None
    return int(m.group(1)), int(m.group(2))


def to_month(value: Any) -> str:
    ym = _year_month(value)
    return f"{ym[0]:04d}-{ym[1]:02d}" if ym else UNKNOWN


def to_year(value: Any) -> str:
    ym = _year_month(value)
    return f"{ym[0]:04d}" if ym else UNKNOWN


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        x = float(_text(value).strip().replace(",", ""))
    except ValueError:
        return None
    return x if math.isfinite(x) else None


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def to_range(value: Any, width: float = 10) -> str:
    x = _number(value)
    if x is None:
        return UNKNOWN
    low = math.floor(x / width) * width
    return f"{_fmt(low)}~{_fmt(low + width)}"


MUNICIPALITIES = ("北京", "上海", "天津", "重庆")
PROVINCES = (
    "河北省", "山西省", "辽宁省", "吉林省", "黑龙江省", "江苏省", "浙江省", "安徽省", "福建省", "江西省", "山东省",
    "河南省", "湖北省", "湖南省", "广东省", "海南省", "四川省", "贵州省", "云南省", "陕西省", "甘肃省", "青海省",
    "台湾省", "内蒙古自治区", "广西壮族自治区", "西藏自治区", "宁夏回族自治区", "新疆维吾尔自治区",
    "香港特别行政区", "澳门特别行政区",
)
_SHORT = {p[:3] if p.startswith(("黑龙江", "内蒙古")) else p[:2]: p for p in PROVINCES}
_CITY = re.compile(r"(.{1,12}?(?:自治州|地区|市|盟))")
_BARE_CITY = re.compile(r"([\u4e00-\u9fff]{1,7}?市)")
_DIVISION_CODE = re.compile(r"\s*([1-9]\d)(\d{2})\d{2}\s*")


def to_region(value: Any, level: str = "city") -> str:
    """A Chinese address or 6-digit division code cut to its province or city (prefecture) level."""
    text = _text(value).strip()
    m = _DIVISION_CODE.fullmatch(text)
    if m:
        return m.group(1) + ("0000" if level == "province" else m.group(2) + "00")
    for city in MUNICIPALITIES:
        if text.startswith(city):
            return city + "市"
    for short, full in _SHORT.items():
        if text.startswith(short):
            if level == "province":
                return full
            rest = text[len(full):] if text.startswith(full) else text[len(short):].removeprefix("省")
            m = _CITY.match(rest)
            return full + m.group(1) if m else full
    m = _BARE_CITY.match(text)
    return m.group(1) if m and level == "city" else UNKNOWN


def _compile(rule: MaskRule, key: bytes | None) -> Callable[[Any], Any]:
    p = dict(rule.params)
    if rule.rule == "mask":
        return lambda v: mask(_text(v), p.get("keep_first", 0), p.get("keep_last", 0), p.get("char", "*"))
    if rule.rule == "replace":
        replacement = p.get("value", "***")
        return lambda v: replacement
    if rule.rule == "truncate":
        return lambda v: _text(v)[: p.get("length", 0)]
    if rule.rule == "pseudonymise":
        if key is None:
            raise InvalidMaskingRule(LocalText("resource.reason.pseudonym_needs_key"))
        return lambda v: pseudonym(_text(v), key, p.get("length", 16), p.get("prefix", ""))
    to = p["to"]
    if to == "range":
        return lambda v: to_range(v, p.get("width", 10))
    if to in ("city", "province"):
        return lambda v: to_region(v, to)
    return to_month if to == "month" else to_year


# --- the engine -------------------------------------------------------------------------------


class Masker:
    """Rules compiled against a column list; apply them to rows with :meth:`apply` or :meth:`row`."""

    def __init__(self, columns: Sequence[str], rules: Iterable[MaskRule | dict], *,
                 pseudonym_key: bytes | None = None) -> None:
        self.rules = [r if isinstance(r, MaskRule) else parse_rule(r) for r in rules]
        index = {name: i for i, name in enumerate(columns)}
        unknown = [r.column for r in self.rules if r.column not in index]
        if unknown:
            raise InvalidMaskingRule(LocalText("resource.reason.no_column", ", ".join(unknown)))
        dropped = {index[r.column] for r in self.rules if r.rule == "drop"}
        self._keep = [i for i in range(len(columns)) if i not in dropped] if dropped else None
        self._steps = [(index[r.column], _compile(r, pseudonym_key)) for r in self.rules
                       if r.rule not in ("drop", "keep")]
        self.columns = [c for i, c in enumerate(columns) if i not in dropped]

    def row(self, row: Sequence[Any]) -> list[Any]:
        out = list(row)
        for i, fn in self._steps:
            value = out[i]
            if value is not None and value != "":
                out[i] = fn(value)
        return [out[i] for i in self._keep] if self._keep is not None else out

    def apply(self, rows: Iterable[Sequence[Any]]) -> Iterator[list[Any]]:
        return map(self.row, rows)


def apply(rows: Iterable[Sequence[Any]], rules: Iterable[MaskRule | dict], *, columns: Sequence[str],
          pseudonym_key: bytes | None = None) -> Iterator[list[Any]]:
    """Masked rows, lazily: ``apply(rows, rules, columns=[...], pseudonym_key=key)``."""
    return Masker(columns, rules, pseudonym_key=pseudonym_key).apply(rows)


@dataclass(frozen=True)
class Preview:
    columns_before: list[str]
    columns_after: list[str]
    rows: list[tuple[list[Any], list[Any]]]  # (before, after)


def preview(columns: Sequence[str], rows: Iterable[Sequence[Any]], rules: Iterable[MaskRule | dict], *,
            pseudonym_key: bytes | None = None, n: int = 5) -> Preview:
    masker = Masker(columns, rules, pseudonym_key=pseudonym_key)
    pairs: list[tuple[list[Any], list[Any]]] = []
    for row in rows:
        if len(pairs) >= n:
            break
        pairs.append((list(row), masker.row(row)))
    return Preview(list(columns), masker.columns, pairs)
