"""Streaming row readers, one per table format: CSV/TSV, JSON Lines, JSON, Excel .xlsx, SQLite.

``open_rows(path, fmt, ...)`` returns a :class:`RowSource`: ``columns`` and an iterator of rows (lists
in column order), read a piece at a time so memory does not grow with the data. The same readers
feed profiling (for the formats other than CSV, which has its own fast scanner), the masking
preview, and later delivery and compute-to-data.

- CSV/TSV: pieces cut at line ends before decoding (see :mod:`delimited`; ``\n``, ``\r\n`` and a
  lone ``\r`` end a line); lines that do not decode or have the wrong number of fields are left
  out (registration reported them);
- JSON Lines: one value per line; objects give columns (keys of the first ``KEY_SCAN`` records,
  nested values as JSON text), other values a single ``value`` column;
- JSON: a top-level array is parsed element by element with ``raw_decode`` over a sliding
  buffer; any other document is read whole only up to ``JSON_WHOLE_LIMIT`` and its first array
  of objects is used; both JSON formats refuse a value nested deeper than ``MAX_DEPTH``, read an
  integer of more than ``MAX_INT_DIGITS`` digits as text, and a lone surrogate (``"\\ud800"``, an
  escape that is not Unicode text) as U+FFFD, as undecodable bytes are;
- xlsx: openpyxl in read-only mode, the first sheet unless one is named; the first non-empty row
  is the header. The zip directory is checked first (parts that unpack to more than
  ``XLSX_UNPACKED_LIMIT``, or large ones packed more than ``XLSX_RATIO_LIMIT`` times, are refused);
  a damaged sheet, found only while its rows are read, is refused with MalformedTable too;
- SQLite: the stdlib driver on a ``mode=ro`` URI, so the user's database is never written.

A source is a path, or (for a hosted copy in the vault) a function returning a binary stream of
the decrypted bytes: nothing is written to disk in plaintext. An .xlsx workbook must be seekable,
so a hosted one is held in memory (up to ``XLSX_MEMORY_LIMIT``).
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
import sqlite3
import zipfile
from collections.abc import Callable, Iterator
from itertools import chain, islice
from pathlib import Path
from typing import BinaryIO

from appliance.crypto.envelope import depth_exceeds
from appliance.errors import LocalText, MalformedTable, SourceUnreadable, shown
from appliance.services.catalog import encoding as enc
from appliance.services.catalog.paths import os_reason
from appliance.services.catalog.delimited import column_names, guess_delimiter, lone_cr_as_lf

KEY_SCAN = 1000
JSON_WHOLE_LIMIT = 64 * 1024 * 1024
READ = 1024 * 1024
MAX_VALUE = 16 * 1024 * 1024
XLSX_MEMORY_LIMIT = 256 * 1024 * 1024
XLSX_UNPACKED_LIMIT = 2 * 1024 * 1024 * 1024
XLSX_RATIO_LIMIT = 200  # deflate packs sheet XML 10-50 times; a large part packed more is a zip bomb
XLSX_MAX_CELLS = 50_000_000  # a sheet that claims more is read as its rows are, not padded to its claim
MAX_DEPTH = 200
"""Deepest nesting of arrays and objects read from a local JSON file (a peer's message may nest 48,
:data:`appliance.crypto.envelope.MAX_DEPTH`); ``json`` itself gives up near 1,000 with RecursionError."""
MAX_INT_DIGITS = 4000
"""A JSON integer written with more digits is read as the text of its digits: Python converts at
most 4,300 digits to an int, and a number that long is an identifier or a mistake, not a quantity."""
FORMATS = ("csv", "tsv", "json", "jsonl", "xlsx", "sqlite")

Source = Path | Callable[[], BinaryIO]


def _open(src: Source) -> BinaryIO:
    return open(src, "rb") if isinstance(src, Path) else src()


def _name(src: Source) -> str:
    return str(src) if isinstance(src, Path) else getattr(src, "name", "hosted copy")


class RowSource:
    """``with open_rows(...) as src: src.columns; for row in src: ...``"""

    def __init__(self, columns: list[str], rows: Iterator[list], closer=None, encoding: str | None = None) -> None:
        self.columns = columns
        self._rows = rows
        self._closer = closer
        self.encoding = encoding  # of a text format, as detected (or as given)

    def __iter__(self) -> Iterator[list]:
        return self._rows

    def close(self) -> None:
        if self._closer is not None:
            self._closer()
            self._closer = None

    def __enter__(self) -> RowSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_rows(src: Source, fmt: str, *, table: str | None = None, encoding: str | None = None,
              delimiter: str | None = None, name: str | None = None) -> RowSource:
    """Rows of a table in a file (``src`` a Path) or of a hosted copy (``src`` opens a stream)."""
    label = Path(name or _name(src))
    if encoding is not None:
        enc.codec_of(encoding)
    try:
        if fmt in ("csv", "tsv"):
            return _delimited(src, label, encoding, delimiter)
        if fmt == "jsonl":
            return _json_lines(src, label, encoding)
        if fmt == "json":
            return _json(src, label, encoding)
        if fmt == "xlsx":
            return _xlsx(src, label, table)
        if fmt == "sqlite" and isinstance(src, Path):
            return sqlite_rows(src, table)
    except OSError as e:
        raise SourceUnreadable(label, os_reason(e)) from None
    raise MalformedTable(label, LocalText("resource.reason.not_a_table_format", fmt))


# --- CSV / TSV --------------------------------------------------------------------------------


def _lines_of(chunks: Iterator[bytes]) -> Iterator[bytes]:
    carry = b""
    for chunk in chunks:
        data = carry + chunk
        end = data.rfind(b"\n") + 1
        yield from data[:end].splitlines(keepends=True) if end else ()
        carry = data[end:]
    if carry:
        yield carry


def _stream_lines(src: Source) -> Iterator[bytes]:
    """The lines of a byte-oriented file, each ending with ``\n`` (a lone ``\r`` ends a line too)."""
    with _open(src) as f:
        yield from _lines_of(lone_cr_as_lf(iter(lambda: f.read(READ), b"")))


def _delimited(src: Source, label: Path, encoding: str | None, delimiter: str | None) -> RowSource:
    with _open(src) as f:
        head = f.read(enc.SAMPLE_BYTES)
    detected = enc.detect(head, complete=len(head) < enc.SAMPLE_BYTES)
    codec = enc.chunk_codec(encoding or detected.encoding)
    if not enc.byte_oriented(codec):  # UTF-16/32: a line end is not one byte; let io decode
        return _delimited_text(label, _wide_text(src, codec), delimiter)
    lines = _stream_lines(src)
    if detected.bom and not encoding:
        lines = _skip_bom(lines, detected.bom)
    return _delimited_text(label, _decoded(lines, codec), delimiter)


def _skip_bom(lines: Iterator[bytes], n: int) -> Iterator[bytes]:
    first = next(lines, b"")
    yield first[n:]
    yield from lines


def _wide_text(src: Source, codec: str) -> Iterator[str]:
    with io.TextIOWrapper(_open(src), encoding=codec, errors="replace", newline="") as f:
        yield from f


def _decoded(lines: Iterator[bytes], codec: str) -> Iterator[str]:
    for line in lines:
        try:
            yield line.decode(codec)
        except UnicodeDecodeError:
            yield "\n"  # reported at registration; left out as a blank line


def _delimited_text(path: Path, text: Iterator[str], delimiter: str | None) -> RowSource:
    header = next(text, "")
    d = delimiter or guess_delimiter(header, path.suffix.lower())
    columns = column_names(next(csv.reader([header.rstrip("\r\n")], delimiter=d), []))
    width = len(columns)

    def rows() -> Iterator[list]:
        reader = csv.reader(text, delimiter=d)
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error:
                continue
            if len(row) == width:
                yield row

    return RowSource(columns, rows(), getattr(text, "close", None))


# --- JSON Lines and JSON -----------------------------------------------------------------------


def _flat(value) -> object:
    return json.dumps(value, ensure_ascii=False, sort_keys=True) if isinstance(value, dict | list) else value


def _int_or_text(digits: str) -> int | str:
    return int(digits) if len(digits) <= MAX_INT_DIGITS else digits


_DECODER = json.JSONDecoder(parse_int=_int_or_text)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _checked(value: object, text: str, start: int, end: int, limit: int, path: Path,
             line: int | None = None) -> object:
    """``value``, parsed from ``text[start:end]``: refused if it nests more than ``limit`` levels (it
    never nests deeper than the brackets in its text: walk it only when it could), with lone
    surrogates replaced (they come only from an escape: look for one only when there is one)."""
    if text.count("[", start, end) + text.count("{", start, end) > limit and depth_exceeds(value, limit):
        raise _too_deep(path, line)
    return _unicode(value) if _SURROGATE_ESCAPE.search(text, start, end) else value


def _unicode(value: object) -> object:
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_unicode(v) for v in value]
    if isinstance(value, dict):
        return {_unicode(k): _unicode(v) for k, v in value.items()}
    return value


def _too_deep(path: Path, line: int | None = None) -> MalformedTable:
    if line is None:
        return MalformedTable(path, LocalText("resource.reason.json_too_deep", MAX_DEPTH))
    return MalformedTable(path, LocalText("resource.reason.json_line_too_deep", line, MAX_DEPTH))


def _json_records(path: Path, texts: Iterator[str]) -> RowSource:
    def parsed() -> Iterator[object]:
        for n, line in enumerate(texts, 1):
            if line.strip():
                try:
                    value = _DECODER.decode(line)
                except ValueError:
                    raise MalformedTable(path, LocalText("resource.reason.json_line_invalid", n)) from None
                except RecursionError:
                    raise _too_deep(path, n) from None
                yield _checked(value, line, 0, len(line), MAX_DEPTH, path, n)

    return _records(path, parsed())


def _records(path: Path, values: Iterator[object]) -> RowSource:
    head = list(islice(values, KEY_SCAN))
    records = [v for v in head if isinstance(v, dict)]
    if head and len(records) == len(head):
        columns = list(dict.fromkeys(k for v in records for k in v))
        return RowSource(columns, ([_flat(v.get(c)) if isinstance(v, dict) else None for c in columns]
                                   for v in chain(head, values)))
    return RowSource(["value"], ([_flat(v)] for v in chain(head, values)))


def _text_encoding(src: Source, given: str | None) -> tuple[str, bytes]:
    """The encoding of a JSON or JSON Lines file (as for CSV: see :mod:`encoding`) and its first bytes."""
    with _open(src) as f:
        head = f.read(enc.SAMPLE_BYTES)
    return given or enc.detect(head, complete=len(head) < enc.SAMPLE_BYTES).encoding, head


def _json_lines(src: Source, label: Path, encoding: str | None = None) -> RowSource:
    codec, _ = _text_encoding(src, encoding)
    if enc.byte_oriented(codec):
        per_line = "utf-8-sig" if codecs.lookup(codec).name == "utf-8" else codec  # a BOM on any line is dropped
        texts: Iterator[str] = (line.decode(per_line, errors="replace") for line in _stream_lines(src))
    else:
        texts = _wide_text(src, codec)
    rows = _json_records(label, texts)
    rows.encoding = codec
    return rows


def _json(src: Source, path: Path, encoding: str | None = None) -> RowSource:
    codec, head = _text_encoding(src, encoding)
    start = head[:4096].decode(codec, errors="replace").lstrip("\ufeff \t\r\n")
    if start.startswith("["):
        rows = _records(path, _array_items(src, path, codec))
        rows.encoding = codec
        return rows
    with _open(src) as f:
        data = f.read(JSON_WHOLE_LIMIT + 1)
    if len(data) > JSON_WHOLE_LIMIT:
        raise MalformedTable(path, LocalText("resource.reason.json_too_large", JSON_WHOLE_LIMIT >> 20))
    try:
        text = data.decode(codec).lstrip("\ufeff")
        doc = _DECODER.decode(text)
    except (ValueError, UnicodeDecodeError) as e:
        raise MalformedTable(path, LocalText("resource.reason.json_invalid", str(e))) from None
    except RecursionError:
        raise _too_deep(path) from None
    doc = _checked(doc, text, 0, len(text), MAX_DEPTH, path)
    items = _first_array(doc)
    if items is None:
        raise MalformedTable(path, LocalText("resource.reason.json_no_records"))
    rows = _records(path, iter(items))
    rows.encoding = codec
    return rows


def _first_array(doc) -> list | None:
    if isinstance(doc, list):
        return doc
    if isinstance(doc, dict):
        for value in doc.values():
            if isinstance(value, list) and value and isinstance(value[0], dict):
                return value
    return None


def _array_items(src: Source, path: Path, codec: str) -> Iterator[object]:
    """The elements of a top-level JSON array, parsed one by one with bounded memory."""
    with io.TextIOWrapper(_open(src), encoding=codec, errors="replace") as f:
        buf, pos, eof = f.read(READ), 0, False
        pos = buf.index("[") + 1
        while True:
            while True:  # skip whitespace and commas, refilling as needed
                while pos < len(buf) and buf[pos] in " \t\r\n,":
                    pos += 1
                if pos < len(buf) or eof:
                    break
                buf, pos = f.read(READ), 0
                eof = not buf
            if pos >= len(buf):
                raise MalformedTable(path, LocalText("resource.reason.json_array_open"))
            if buf[pos] == "]":
                return
            try:
                value, end = _DECODER.raw_decode(buf, pos)
                complete = end < len(buf) or eof
            except ValueError:
                complete, end = False, pos
            except RecursionError:
                raise _too_deep(path) from None
            if complete:
                yield _checked(value, buf, pos, end, MAX_DEPTH - 1, path)  # the array is the first level
                pos = end
                continue
            if eof or len(buf) - pos > MAX_VALUE:
                raise MalformedTable(path, LocalText("resource.reason.json_element_invalid"))
            more = f.read(READ)
            eof = not more
            buf, pos = buf[pos:] + more, 0


# --- Excel and SQLite --------------------------------------------------------------------------


def _xlsx(src: Source, path: Path, sheet: str | None) -> RowSource:
    import openpyxl  # imported on first use: it is a large package

    workbook: Path | BinaryIO
    if isinstance(src, Path):
        workbook = src
    else:
        with _open(src) as f:
            data = f.read(XLSX_MEMORY_LIMIT + 1)
        if len(data) > XLSX_MEMORY_LIMIT:
            raise MalformedTable(path, LocalText("resource.reason.xlsx_hosted_too_large", XLSX_MEMORY_LIMIT >> 20))
        workbook = io.BytesIO(data)
    _check_zip(workbook, path)
    try:
        wb = openpyxl.load_workbook(workbook, read_only=True, data_only=True)
    except Exception as e:  # noqa: BLE001 - openpyxl raises zipfile, KeyError and its own errors for damaged files
        raise MalformedTable(path, LocalText("resource.reason.xlsx_unreadable", type(e).__name__)) from None
    try:
        if sheet is not None and sheet not in wb.sheetnames:
            raise MalformedTable(path, LocalText("resource.reason.no_sheet", shown(sheet), ", ".join(wb.sheetnames)))
        rows = _sheet_rows(wb, sheet, path)
        header = next((r for r in rows if any(v is not None for v in r)), None)
    except BaseException:
        wb.close()
        raise
    if header is None:
        wb.close()
        return RowSource([], iter(()))
    columns = column_names(["" if v is None else str(v) for v in header])
    width = len(columns)

    def body() -> Iterator[list]:
        for r in rows:
            if any(v is not None for v in r):
                row = list(r[:width])
                yield row + [None] * (width - len(row))

    return RowSource(columns, body(), wb.close)


def _check_zip(src: Path | BinaryIO, path: Path) -> None:
    """Refuse a workbook whose zip directory is unreadable or promises a zip bomb (before unpacking)."""
    try:
        with zipfile.ZipFile(src) as z:
            parts = z.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError):
        raise MalformedTable(path, LocalText("resource.reason.xlsx_not_zip")) from None
    finally:
        if not isinstance(src, Path):
            src.seek(0)
    unpacked = sum(p.file_size for p in parts)
    packed_tight = any(p.file_size > 64 << 20 and p.file_size > XLSX_RATIO_LIMIT * max(1, p.compress_size)
                       for p in parts)
    if unpacked > XLSX_UNPACKED_LIMIT or packed_tight:
        raise MalformedTable(path, LocalText("resource.reason.xlsx_too_large", unpacked >> 20))


def _sheet_rows(wb, sheet: str | None, path: Path) -> Iterator[tuple]:
    """The rows of a sheet, as openpyxl reads them; a damaged sheet is a MalformedTable."""
    try:
        ws = wb[sheet or wb.sheetnames[0]]
        if (ws.max_row or 0) * (ws.max_column or 0) > XLSX_MAX_CELLS:  # every row would be padded to the claim
            ws.reset_dimensions()
        rows = ws.iter_rows(values_only=True)
        while True:
            try:
                row = next(rows)
            except StopIteration:
                return
            yield row
    except MalformedTable:
        raise
    except Exception as e:  # noqa: BLE001 - see below
        # the sheet XML is parsed as rows are read: ParseError, ValueError (a number), zip errors
        raise MalformedTable(path, LocalText("resource.reason.xlsx_damaged", type(e).__name__)) from None


def sqlite_tables(path: Path) -> list[str]:
    conn = _sqlite_connect(path)
    try:
        return [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
                                           "AND name NOT LIKE 'sqlite_%' ORDER BY name")]
    except sqlite3.DatabaseError as e:
        raise MalformedTable(path, LocalText("resource.reason.sqlite_unreadable", str(e))) from None
    finally:
        conn.close()


def _sqlite_connect(path: Path) -> sqlite3.Connection:
    try:
        return sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
    except sqlite3.Error as e:
        raise SourceUnreadable(path, LocalText("resource.reason.sqlite_error", str(e))) from None


def table_not_chosen(path: Path, tables: list[str], table: str | None = None) -> MalformedTable:
    """The error for an SQLite file read without naming one of its tables (or naming one it lacks)."""
    listed = ", ".join(tables) if tables else LocalText("resource.reason.none")
    if table is None:
        return MalformedTable(path, LocalText("resource.reason.choose_table", listed))
    return MalformedTable(path, LocalText("resource.reason.no_table", shown(table), listed))


def row_line(row: list) -> bytes:
    """One row of an SQLite table as its content is hashed and hosted: a JSON array and a line end."""
    return json.dumps(row, ensure_ascii=False, default=_json_default).encode("utf-8") + b"\n"


def _json_default(value) -> str:
    return bytes(value).hex() if isinstance(value, bytes | bytearray | memoryview) else str(value)


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def sqlite_rows(path: Path, table: str | None) -> RowSource:
    tables = sqlite_tables(path)
    if table not in tables:
        raise table_not_chosen(path, tables, table)
    conn = _sqlite_connect(path)
    try:
        cur = conn.execute(f"SELECT * FROM {quote_identifier(table)}")
    except sqlite3.DatabaseError as e:
        conn.close()
        raise MalformedTable(path, LocalText("resource.reason.sqlite_error", str(e))) from None
    columns = column_names([d[0] for d in cur.description])

    def body() -> Iterator[list]:
        try:
            while batch := cur.fetchmany(1000):
                yield from map(list, batch)
        except sqlite3.DatabaseError as e:
            raise MalformedTable(path, LocalText("resource.reason.sqlite_error", str(e))) from None

    return RowSource(columns, body(), conn.close)
