"""Profiling a table in one streaming pass over column batches: types, nulls, distinct values,
ranges, time range, duplicate rows, a value sample for the sensitive scan, and a quality score.

Work is done per *batch of a column* with builtins that loop in C (``set``, ``list.count``, one
regular expression over the batch joined by ``\\x1f``) rather than per cell in Python; the cost
of a cell is then a few tens of nanoseconds. A cell that holds ``\\x1f`` itself (control characters
are allowed in a file) is typed as if it held U+FFFD there, so it never splits into two values.
Memory is bounded whatever the table's size:

- distinct values: exact up to ``distinct_cap`` per column; beyond it an adaptive hash sample
  (Gibbons' distinct sampling: keep the values whose hash has its ``level`` low bits zero, raise
  ``level`` when the sample outgrows the cap) estimates the count as ``sample size × 2^level``;
- duplicate rows: rows are fingerprinted (the hash of the row's values); fingerprints are kept
  exactly up to ``fingerprint_cap`` and then sampled the same way, every duplicate found among
  the sampled fingerprints counting ``2^level``. Hashes are Python's ``hash`` (64-bit SipHash
  with a per-process key), so estimates vary slightly between runs but never within one;
- values for the sensitive scan: at most ``reservoir`` non-empty values per column, a uniform
  random sample of all of them (reservoir sampling, Li's algorithm L: random numbers are drawn
  only for the values taken, so the cost does not grow with the table). No row layout can dodge
  it, as a fixed stride could (ID numbers in every other row were never looked at), and the share
  of values that validate estimates the column's real share. The seed is drawn from the scanner's
  generator and recorded in the quality report (``sample_seed``), so a profile can be repeated.

Quality score (0-100) = 100 × (0.35 completeness + 0.35 validity + 0.2 uniqueness + 0.1 integrity):
completeness = 1 − empty cells / cells; validity = values of the column's inferred type / non-empty
values (text columns are always valid); uniqueness = 1 − duplicate rows / rows (a duplicate is a row
equal to an earlier one); integrity = rows read / (rows read + rows skipped for a wrong number of
fields or undecodable bytes).
"""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time

from appliance.domain.catalog import Column

NULL_TOKENS = frozenset({"", "NULL", "null", "Null", "NA", "N/A", "n/a", "None", "none", "\\N", "-", "—"})
SEP = "\x1f"
NOT_SEP = "\ufffd"  # what SEP inside a cell is typed as: a cell holding it is text (it matches no type)
TYPE_THRESHOLD = 0.9  # a column takes the first type that at least 90% of its non-empty values have
DROP_AFTER = 1000  # after this many values, a type that fits fewer than half of them stops being tried
STAMP_CACHE = 20_000  # per column: normalised date/time of values already seen

_DATE = r"\d{4}(?:-\d{1,2}-\d{1,2}|/\d{1,2}/\d{1,2}|\.\d{1,2}\.\d{1,2}|年\d{1,2}月\d{1,2}日)"
TYPES = {  # tried in this order; integer before decimal (every integer is a decimal too)
    "boolean": r"(?i:true|false|yes|no)|[是否]",
    "integer": r"[-+]?(?:0|[1-9]\d{0,14})",
    "decimal": r"[-+]?(?:(?:0|[1-9]\d{0,14})(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?",
    "date": _DATE,
    "datetime": _DATE + r"[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?",
}
# Atomic groups: once a value matched, the engine never tries other ways of matching it, so a
# batch that fails costs one pass instead of backtracking through every earlier value.
_FULL = {t: re.compile(rf"(?> *(?:{p}) *)?(?:{SEP}(?> *(?:{p}) *)?)*+") for t, p in TYPES.items()}
_EACH = {t: re.compile(rf"(?<![^{SEP}])(?> *(?:{p}) *)(?![^{SEP}])") for t, p in TYPES.items()}
_ISO = r"\d{{4}}-\d\d-\d\d(?:{0}\d\d:\d\d(?::\d\d)?)?"
_ISO_SPACE = re.compile(rf"{_ISO.format(' ')}(?:{SEP}{_ISO.format(' ')})*+")
_ISO_T = re.compile(rf"{_ISO.format('T')}(?:{SEP}{_ISO.format('T')})*+")
_DATE_PARTS = re.compile(r"\s*(\d{4})\D(\d{1,2})\D(\d{1,2})日?(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?")
WEIGHTS = {"completeness": 0.35, "validity": 0.35, "uniqueness": 0.2, "integrity": 0.1}


def cell_text(value) -> str:
    """A value of any source as the text the profiler sees (None → "")."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d") if value.time() == time() and not value.tzinfo else value.isoformat(" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


class HashSample:
    """Exact set up to ``cap`` items, then an adaptive hash sample; counts distinct items added."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.exact: set | None = set()
        self.hashes: set[int] = set()
        self.level = 0

    def add(self, items: set) -> None:
        if self.exact is not None:
            self.exact |= items
            if len(self.exact) <= self.cap:
                return
            self.hashes, self.exact = set(map(hash, self.exact)), None
        else:
            mask = (1 << self.level) - 1
            self.hashes.update(h for h in map(hash, items) if not h & mask)
        self._shrink()

    def _shrink(self) -> None:
        while len(self.hashes) > self.cap:
            self.level += 1
            mask = (1 << self.level) - 1
            self.hashes = {h for h in self.hashes if not h & mask}

    @property
    def estimated(self) -> bool:
        return self.exact is None

    def count(self) -> int:
        return len(self.exact) if self.exact is not None else len(self.hashes) << self.level


class DuplicateRows:
    """Counts rows equal to an earlier row, from row fingerprints, in bounded memory."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.seen: set[int] = set()
        self.level = 0
        self.duplicates = 0

    def add(self, fingerprints: list[int]) -> None:
        if self.level:
            mask = (1 << self.level) - 1
            fingerprints = [f for f in fingerprints if not f & mask]
        before = len(self.seen)
        self.seen.update(fingerprints)
        self.duplicates += (len(fingerprints) - (len(self.seen) - before)) << self.level
        while len(self.seen) > self.cap:
            self.level += 1
            mask = (1 << self.level) - 1
            self.seen = {f for f in self.seen if not f & mask}

    @property
    def estimated(self) -> bool:
        return self.level > 0


@dataclass
class _ColumnState:
    name: str
    distinct: HashSample
    nulls: int = 0
    nonnull: int = 0
    valid: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TYPES, 0))
    candidates: list[str] = field(default_factory=lambda: list(TYPES))
    num_min: float | None = None
    num_max: float | None = None
    when_min: str | None = None
    when_max: str | None = None
    bad_dates: int = 0
    last_full: str | None = None
    stamps: dict[str, str | None] = field(default_factory=dict)
    days: dict[str, bool] = field(default_factory=dict)
    reservoir: list[str] = field(default_factory=list)
    seen: int = 0  # non-empty values offered to the reservoir
    take: int = 0  # index (among them) of the next value to take once the reservoir is full
    w: float = 1.0


@dataclass(frozen=True)
class TableProfile:
    columns: list[Column]
    quality: dict
    samples: list[list[str]]  # the first rows, unmasked: mask before storing or showing
    values: list[list[str]]  # per column, the sampled values for the sensitive scan (never stored)
    time_range: dict | None
    profiled_rows: int


class TableProfiler:
    def __init__(self, columns: Sequence[str], *, rng: random.Random | None = None, sample_rows: int = 5,
                 reservoir: int = 500, distinct_cap: int = 10_000, fingerprint_cap: int = 200_000) -> None:
        self.names = list(columns)
        self._cols = [_ColumnState(n, HashSample(distinct_cap)) for n in self.names]
        self.seed = (rng or random.Random(0)).getrandbits(64)
        self._rng = random.Random(self.seed)
        self._reservoir = reservoir
        self._dups = DuplicateRows(fingerprint_cap)
        self._sample_rows = sample_rows
        self.samples: list[list[str]] = []
        self.rows = 0

    def add_rows(self, rows: Sequence[Sequence]) -> None:
        """Rows of any values (converted with :func:`cell_text`), each as long as the column list."""
        if rows:
            width = len(self.names)
            self.add_columns([list(map(cell_text, col)) for col in zip(*rows, strict=True)] if width else [])

    def add_columns(self, cols: list[list[str]]) -> None:
        """One batch as columns of text cells, all of the same length."""
        if not cols:
            return
        n = len(cols[0])
        if len(self.samples) < self._sample_rows:
            wanted = self._sample_rows - len(self.samples)
            self.samples.extend(list(r) for r in zip(*(c[:wanted] for c in cols), strict=True))
        self._dups.add(list(map(hash, zip(*cols, strict=True))))
        for state, cells in zip(self._cols, cols, strict=True):
            self._column_batch(state, cells)
        self.rows += n

    def _column_batch(self, st: _ColumnState, cells: list[str]) -> None:
        distinct = set(cells)
        nulls_here = distinct & NULL_TOKENS
        nulls = sum(cells.count(tok) for tok in nulls_here) if nulls_here else 0
        st.nulls += nulls
        st.nonnull += len(cells) - nulls
        if nulls_here:
            distinct -= nulls_here
        st.distinct.add(distinct)
        self._offer(st, cells, nulls)
        if st.candidates and len(cells) > nulls:
            self._types(st, cells, distinct, nulls_here, len(cells) - nulls)

    def _types(self, st: _ColumnState, cells: list[str], distinct: set[str], nulls_here: set[str], n: int) -> None:
        typed = [c for c in cells if c not in NULL_TOKENS] if nulls_here - {""} else cells
        joined = SEP.join(typed)
        if joined.count(SEP) != len(typed) - 1:  # a cell holds SEP itself (a control character in the file)
            typed, cells = _no_sep(typed), _no_sep(cells)
            distinct = {v.replace(SEP, NOT_SEP) for v in distinct}
            joined = SEP.join(typed)
        full = self._full_type(st, joined)
        for t in st.candidates:
            if full is None:
                st.valid[t] += len(_EACH[t].findall(joined))
            elif t == full or (full == "integer" and t == "decimal"):
                st.valid[t] += n  # every integer is a decimal; the other types exclude each other
        if "decimal" in st.candidates:
            self._numeric_range(st, distinct, full in ("integer", "decimal"))
        if "date" in st.candidates or "datetime" in st.candidates:
            self._time_range(st, distinct, cells)
        if st.nonnull >= DROP_AFTER:
            st.candidates = [t for t in st.candidates if st.valid[t] * 2 >= st.nonnull]

    @staticmethod
    def _full_type(st: _ColumnState, joined: str) -> str | None:
        """The first type every value of the batch has (the last batch's first), or None."""
        order = st.candidates
        if st.last_full in order:
            order = [st.last_full] + [t for t in order if t != st.last_full]
        for t in order:
            if _FULL[t].fullmatch(joined) is not None:
                if t == "decimal" and "integer" in order and _FULL["integer"].fullmatch(joined) is not None:
                    t = "integer"
                st.last_full = t
                return t
        return None

    @staticmethod
    def _numeric_range(st: _ColumnState, distinct: set[str], all_valid: bool) -> None:
        if all_valid:
            numbers = list(map(float, distinct))
        else:
            numbers = []
            for v in distinct:
                try:
                    x = float(v)
                except ValueError:
                    continue
                if x == x and abs(x) != float("inf"):
                    numbers.append(x)
        if numbers:
            lo, hi = min(numbers), max(numbers)
            if not (math.isfinite(lo) and math.isfinite(hi)):  # "1e400" is a decimal too large for a float
                numbers = [x for x in numbers if math.isfinite(x)]
                if not numbers:
                    return
                lo, hi = min(numbers), max(numbers)
            st.num_min = lo if st.num_min is None else min(lo, st.num_min)
            st.num_max = hi if st.num_max is None else max(hi, st.num_max)

    @staticmethod
    def _time_range(st: _ColumnState, distinct: set[str], cells: list[str]) -> None:
        """Min and max of the batch's dates; invalid calendar dates (2026-02-30) count as invalid."""
        if distinct and (_ISO_SPACE.fullmatch(SEP.join(distinct)) or _ISO_T.fullmatch(SEP.join(distinct))):
            stamps = _iso_stamps(st, distinct, cells)  # ISO text sorts like time: no parsing per value
        else:
            stamps = _parsed_stamps(st, distinct, cells)
        if stamps:
            lo, hi = min(stamps), max(stamps)
            st.when_min = lo if st.when_min is None else min(lo, st.when_min)
            st.when_max = hi if st.when_max is None else max(hi, st.when_max)

    def _offer(self, st: _ColumnState, cells: list[str], nulls: int) -> None:
        """Reservoir sampling (algorithm L) of the batch's non-empty values."""
        values = [v for v in cells if v not in NULL_TOKENS] if nulls else cells
        k, rng, start = self._reservoir, self._rng, st.seen
        if len(st.reservoir) < k:
            room = k - len(st.reservoir)
            st.reservoir.extend(values[:room])
            if len(st.reservoir) == k:
                st.w = math.exp(math.log(rng.random() or 1e-300) / k)
                st.take = k + self._skip(st.w)
        end = start + len(values)
        while st.take < end and len(st.reservoir) == k:
            st.reservoir[rng.randrange(k)] = values[st.take - start]
            st.w *= math.exp(math.log(rng.random() or 1e-300) / k)
            st.take += 1 + self._skip(st.w)
        st.seen = end

    def _skip(self, w: float) -> int:
        """How many values to pass over before the next one is taken (w: the algorithm's weight)."""
        if w >= 1.0:
            return 0
        if w <= 0.0:
            return 1 << 62
        return int(math.log(self._rng.random() or 1e-300) / math.log1p(-w))

    # --- the result -------------------------------------------------------------------------

    def finish(self, *, total_rows: int | None = None, skipped_rows: int = 0) -> TableProfile:
        columns = [_column(st) for st in self._cols]
        total = self.rows if total_rows is None else total_rows
        quality = self._quality(columns, total, skipped_rows)
        return TableProfile(columns=columns, quality=quality, samples=self.samples,
                            values=[st.reservoir for st in self._cols], time_range=_time_range_of(columns),
                            profiled_rows=self.rows)

    def _quality(self, columns: list[Column], total: int, skipped: int) -> dict:
        cells = self.rows * len(columns)
        nulls = sum(c.nulls for c in columns)
        nonnull = cells - nulls
        valid = sum(round(c.valid * (self.rows - c.nulls)) if c.valid is not None else 0 for c in columns)
        parts = {
            "completeness": 1 - nulls / cells if cells else 1.0,
            "validity": valid / nonnull if nonnull else 1.0,
            "uniqueness": 1 - self._dups.duplicates / self.rows if self.rows else 1.0,
            "integrity": total / (total + skipped) if total + skipped else 1.0,
        }
        score = 100 * sum(WEIGHTS[k] * v for k, v in parts.items())
        return {"rows": total, "profiled_rows": self.rows, "sampled": self.rows < total,
                **{k: round(v, 4) for k, v in parts.items()},
                "duplicate_rows": self._dups.duplicates, "duplicates_estimated": self._dups.estimated,
                "skipped_rows": skipped, "score": round(score, 1), "sample_seed": self.seed}


def _no_sep(cells: list[str]) -> list[str]:
    return [c.replace(SEP, NOT_SEP) if SEP in c else c for c in cells]


def _valid_day(st: _ColumnState, day: str) -> bool:
    ok = st.days.get(day)
    if ok is None:
        try:
            ok = bool(datetime(int(day[:4]), int(day[5:7]), int(day[8:10])))
        except ValueError:
            ok = False
        if len(st.days) < STAMP_CACHE:
            st.days[day] = ok
    return ok


def _iso_stamps(st: _ColumnState, distinct: set[str], cells: list[str]) -> list[str]:
    bad = {d for d in {v[:10] for v in distinct} if not _valid_day(st, d)}
    if bad:
        st.bad_dates += sum(1 for c in cells if c[:10] in bad)
        distinct = {v for v in distinct if v[:10] not in bad}
    if not distinct:
        return []
    return [_iso_normal(min(distinct)), _iso_normal(max(distinct))]


def _iso_normal(v: str) -> str:
    v = v.replace("T", " ")
    return v + ":00" if len(v) == 16 else v


def _parsed_stamps(st: _ColumnState, distinct: set[str], cells: list[str]) -> list[str]:
    stamps: list[str] = []
    cache = st.stamps
    for v in distinct:
        if v in cache:
            stamp = cache[v]
        else:
            m = _DATE_PARTS.match(v)
            stamp = _normal_time(m) if m else ""
            if len(cache) < STAMP_CACHE:
                cache[v] = stamp
        if stamp is None:
            st.bad_dates += cells.count(v)
        elif stamp:
            stamps.append(stamp)
    return stamps


def _normal_time(m: re.Match) -> str | None:
    """``YYYY-MM-DD`` or ``YYYY-MM-DD HH:MM:SS``: both sort correctly as text, also mixed."""
    y, mo, d, hh, mm, ss = m.groups()
    try:
        when = datetime(int(y), int(mo), int(d), int(hh or 0), int(mm or 0), int(ss or 0))
    except ValueError:
        return None
    day = f"{when.year:04d}-{when.month:02d}-{when.day:02d}"
    return day if hh is None else f"{day} {when.hour:02d}:{when.minute:02d}:{when.second:02d}"


def _fmt_number(x: float, integer: bool) -> str:
    return str(int(x)) if integer or x.is_integer() else repr(x)


def _column(st: _ColumnState) -> Column:
    n = st.nonnull
    chosen = next((t for t in TYPES if n and st.valid[t] / n >= TYPE_THRESHOLD), "text")
    valid_count = st.valid.get(chosen, 0)
    when = st.valid["date"] + st.valid["datetime"]
    if chosen == "text" and n and when / n >= TYPE_THRESHOLD:  # dates with and without a time
        chosen, valid_count = max(("date", "datetime"), key=lambda t: st.valid[t]), when
    valid = 1.0 if chosen == "text" or not n else max(0, valid_count - st.bad_dates) / n
    lo = hi = None
    if chosen in ("integer", "decimal") and st.num_min is not None and st.num_max is not None:
        lo, hi = _fmt_number(st.num_min, chosen == "integer"), _fmt_number(st.num_max, chosen == "integer")
    elif chosen in ("date", "datetime") and st.when_min is not None:
        lo, hi = st.when_min, st.when_max
    return Column(name=st.name, type=chosen, nulls=st.nulls, distinct=st.distinct.count(),
                  distinct_estimated=st.distinct.estimated, valid=round(min(valid, 1.0), 4), min=lo, max=hi)


def _time_range_of(columns: list[Column]) -> dict | None:
    """The first date or datetime column that does not look like a birth date gives the time range."""
    for c in columns:
        if c.type in ("date", "datetime") and c.min is not None and not re.search(r"birth|出生|生日", c.name, re.I):
            return {"column": c.name, "min": c.min, "max": c.max}
    return None
