"""An ODRL 2.2 policy: rules, duties and atomic constraints, with values kept in lexical form.

A constraint's ``right`` is the lexical value (a string, or a tuple of strings for set operators),
as it travels in JSON-LD; :func:`typed` turns it into a Python value for its left operand
(``datetime``, ``int``, ``timedelta``, ``Decimal``, ``str`` or a tuple of them). Keeping the
lexical form makes a policy from a peer representable even when a value is wrong, so validation
can name the problem instead of the parser failing on the first one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation

from appliance.domain.odrl.vocab import LEFT_OPERANDS, PROFILE, SET_OPS, Datatype, compact

Lexical = str | tuple[str, ...]


def lexical(value: object) -> Lexical:
    """The lexical form of a Python value (what goes into ``Constraint.right``)."""
    if isinstance(value, bool):
        raise TypeError("a boolean is not an ODRL value here")
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("a date and time needs a time zone")
        v = value.astimezone(timezone.utc)
        text = v.strftime("%Y-%m-%dT%H:%M:%S")
        return text + (f".{v.microsecond // 1000:03d}" if v.microsecond else "") + "Z"
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, (int, Decimal)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return tuple(str(v) for v in value)
    return str(value)


@dataclass(frozen=True)
class Constraint:
    left: str
    operator: str
    right: Lexical
    unit: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.right, (str, tuple)):
            object.__setattr__(self, "right", lexical(self.right))

    def describe(self) -> str:
        """The constraint as written, compact (``purpose eq dpv:AcademicResearch``)."""
        if isinstance(self.right, tuple):
            right = "[" + ", ".join(map(compact, self.right)) + "]"
        else:
            right = compact(self.right)
        return f"{compact(self.left)} {self.operator} {right}"


@dataclass(frozen=True)
class Duty:
    action: str
    constraints: tuple[Constraint, ...] = ()


@dataclass(frozen=True)
class Rule:
    """A permission or a prohibition (``duties`` only on permissions)."""

    action: str
    constraints: tuple[Constraint, ...] = ()
    duties: tuple[Duty, ...] = ()


@dataclass(frozen=True)
class Policy:
    uid: str
    type: str = "Offer"
    permissions: tuple[Rule, ...] = ()
    prohibitions: tuple[Rule, ...] = ()
    obligations: tuple[Duty, ...] = ()
    profile: str = PROFILE
    target: str | None = None
    assigner: str | None = None
    assignee: str | None = None
    extra: dict = field(default_factory=dict, compare=False)  # other JSON-LD keys, kept as received

    def rules(self) -> Iterator[tuple[str, Rule]]:
        """Every permission and prohibition with its path (``permission[0]``)."""
        for i, r in enumerate(self.permissions):
            yield f"permission[{i}]", r
        for i, r in enumerate(self.prohibitions):
            yield f"prohibition[{i}]", r

    def duties(self) -> Iterator[tuple[str, Duty]]:
        """Every duty of a permission and every obligation, with its path."""
        for i, r in enumerate(self.permissions):
            for j, d in enumerate(r.duties):
                yield f"permission[{i}].duty[{j}]", d
        for i, d in enumerate(self.obligations):
            yield f"obligation[{i}]", d


# --- typed values ------------------------------------------------------------------------------

# ASCII digits only (``\d`` also matches other scripts' digits, which int() reads), and no more of
# them than any real value needs: a longer number would only reach Python's own limits.
_DURATION = re.compile(r"P(?:(\d{1,9})W)?(?:(\d{1,9})D)?"
                       r"(?:T(?:(\d{1,9})H)?(?:(\d{1,9})M)?(?:(\d{1,9}(?:\.\d{1,6})?)S)?)?", re.ASCII)
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})", re.ASCII)
_INTEGER = re.compile(r"[+-]?\d{1,30}", re.ASCII)


def parse_duration(text: str) -> timedelta:
    """ISO 8601 durations in weeks, days, hours, minutes, seconds (``P30D``, ``PT12H``).

    Years and months are refused: their length varies, and a contract must say exactly how long.
    """
    m = _DURATION.fullmatch(text)
    if not m or text in ("P", "PT") or text.endswith("T"):
        raise ValueError(f"{text!r} is not a duration in weeks, days, hours, minutes or seconds (e.g. P30D)")
    w, d, h, mi, s = m.groups()
    try:
        return timedelta(weeks=int(w or 0), days=int(d or 0), hours=int(h or 0), minutes=int(mi or 0),
                         seconds=float(s or 0))
    except OverflowError:
        raise ValueError(f"{text!r} is longer than any contract can last") from None


def format_duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    out = "P" + (f"{days}D" if days else "")
    time = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "") + (f"{secs}S" if secs else "")
    if time:
        out += "T" + time
    return out if out != "P" else "PT0S"


def parse_datetime(text: str) -> datetime:
    if not _DATETIME.fullmatch(text):
        raise ValueError(f"{text!r} is not a date and time with a time zone (e.g. 2026-12-31T23:59:59Z)")
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)
    except (ValueError, OverflowError):  # no such day (2026-02-30), or out of range once in UTC
        raise ValueError(f"{text!r} is not a date and time that exists (e.g. 2026-12-31T23:59:59Z)") from None


def _scalar(datatype: Datatype, text: str):
    if datatype is Datatype.DATETIME:
        return parse_datetime(text)
    if datatype is Datatype.INTEGER:
        if not _INTEGER.fullmatch(text):
            raise ValueError(f"{text!r} is not a whole number")
        return int(text)
    if datatype is Datatype.DURATION:
        return parse_duration(text)
    if datatype is Datatype.DECIMAL:
        try:
            value = Decimal(text)
        except InvalidOperation:
            raise ValueError(f"{text!r} is not a number") from None
        if not value.is_finite():
            raise ValueError(f"{text!r} is not a number")
        return value
    if not text.strip():
        raise ValueError("the value is empty")
    return text


def typed(c: Constraint):
    """The Python value of ``c.right`` for its left operand; ValueError says what is wrong with it."""
    spec = LEFT_OPERANDS.get(c.left)
    if spec is None:
        raise ValueError(f"unknown left operand {c.left!r}")
    if c.operator in SET_OPS:
        items = c.right if isinstance(c.right, tuple) else (c.right,)
        if not items:
            raise ValueError("the list of values is empty")
        return tuple(_scalar(spec.datatype, v) for v in items)
    if isinstance(c.right, tuple):
        if len(c.right) != 1:
            raise ValueError(f"operator {c.operator} takes one value, not a list")
        return _scalar(spec.datatype, c.right[0])
    return _scalar(spec.datatype, c.right)
