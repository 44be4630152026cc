"""Scanning a CSV or TSV file: every byte hashed, decoded and counted; cells profiled on a sample.

One pass over the file (see ``docs/catalog-resources.md`` for the measurements behind this):

- :class:`HashingReader` reads 16 MiB blocks and hashes them on a helper thread;
- a line ends at ``\n``, ``\r\n`` or a lone ``\r`` (classic Mac OS, and some exports): a lone
  ``\r`` is read as ``\n`` (:func:`lone_cr_as_lf`), so every later step cuts at ``\n`` alone;
- each block is cut at line ends into pieces of about 1 MiB. Line ends, delimiters and quotes are
  single bytes that never occur inside a character of UTF-8, GBK or GB18030, so pieces are cut
  before decoding, and every piece decodes on its own (no incremental decoder);
- a piece that does not decode is decoded line by line: bad lines are reported with their
  numbers and left out (replaced by blank lines so later line numbers stay right);
- a piece without quotes is counted with ``str.count``: lines and delimiters; if the delimiters
  do not add up to ``lines × (columns − 1)`` the piece is checked line by line and lines with the
  wrong number of fields are reported and left out. A piece with quotes goes through ``csv``;
  one that ends inside a quoted field is joined with the next piece;
- cells are profiled (:mod:`profiling`) for every row of files up to ``exact_bytes``, and for an
  evenly spread sample (the first rows of every piece, ``sample_bytes`` in total) of larger ones.
  The unquoted fast path splits a whole piece into cells with one ``split`` and takes columns as
  stride slices, so no Python code runs per row.

Memory is bounded by the block size, the queue depth and the profiler's caps, not the file size.
"""

from __future__ import annotations

import codecs
import csv
import io
import random
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from appliance.errors import LocalText, MalformedTable
from appliance.services.catalog import encoding as enc
from appliance.services.catalog.hashing import BLOCK_SIZE, HashingReader
from appliance.services.catalog.profiling import TableProfile, TableProfiler

PIECE = 1024 * 1024
MAX_RECORD = 16 * 1024 * 1024  # a line, or a quoted field, longer than this is reported
EXACT_BYTES = 16 * 1024 * 1024
SAMPLE_BYTES = 8 * 1024 * 1024
SAMPLE_BATCH = 512 * 1024  # characters of sampled text profiled at once (fewer, larger batches)
DELIMITERS = (",", "\t", ";", "|")
FIRST_SKIPPED = 20  # line numbers kept per report
_LONE_CR = re.compile(rb"\r(?!\n)")


@dataclass
class SkipReport:
    count: int = 0
    reasons: Counter = field(default_factory=Counter)
    first: list[tuple[int, str]] = field(default_factory=list)

    def add(self, line: int, reason: str) -> None:
        self.count += 1
        self.reasons[reason] += 1
        if len(self.first) < FIRST_SKIPPED:
            self.first.append((line, reason))

    def to_json(self) -> dict:
        if not self.count:
            return {}
        return {"count": self.count, "reasons": dict(self.reasons), "first": [list(x) for x in self.first]}


@dataclass(frozen=True)
class DelimitedScan:
    sha256: str
    size: int
    encoding: str
    delimiter: str
    columns: list[str]
    rows: int
    profile: TableProfile
    skipped: SkipReport


def column_names(raw: list[str]) -> list[str]:
    """Header cells made usable: blanks named ``column_N``, repeats numbered."""
    names: list[str] = []
    seen: Counter[str] = Counter()
    for i, name in enumerate(raw):
        name = name.strip().lstrip("\ufeff") or f"column_{i + 1}"
        seen[name] += 1
        names.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return names


def guess_delimiter(header: str, suffix: str) -> str:
    if suffix in (".tsv", ".tab"):
        return "\t"
    counts = {d: header.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


class DelimitedScanner:
    def __init__(self, path: Path, *, delimiter: str | None = None, encoding: str | None = None,
                 exact_bytes: int = EXACT_BYTES, sample_bytes: int = SAMPLE_BYTES,
                 progress: Callable[[int, int], None] | None = None, rng: random.Random | None = None,
                 block_size: int = BLOCK_SIZE) -> None:
        self.path = Path(path)
        self._delimiter = delimiter
        self._encoding = encoding
        self._exact = exact_bytes
        self._sample_bytes = sample_bytes
        self._progress = progress
        self._rng = rng or random.Random(0)
        self._block_size = block_size
        self.skipped = SkipReport()
        self.rows = 0
        self.delimiter = ""
        self.columns: list[str] = []  # from the header line
        self._header_seen = False

    def run(self) -> DelimitedScan:
        with HashingReader(self.path, block_size=self._block_size) as reader:
            total = reader.total
            blocks = iter(reader)
            first = next(blocks, b"")
            if not first.strip():
                raise MalformedTable(self.path, LocalText("resource.reason.empty_file"))
            detected = enc.detect(first[: enc.SAMPLE_BYTES], complete=len(first) == total)
            self.encoding = self._encoding or detected.encoding
            codec = enc.chunk_codec(self.encoding)
            data = _chain([first[detected.bom if not self._encoding else 0:]], blocks)
            if not enc.byte_oriented(codec):
                data, codec = _transcode(data, codec), "utf-8"
            data = lone_cr_as_lf(data)
            self._codec = codec
            self._fraction = 1.0 if total <= self._exact else self._sample_bytes / total
            self._read_all(data, total)
        self._flush_sample()
        profile = self.profiler.finish(total_rows=self.rows, skipped_rows=self.skipped.count)
        assert reader.sha256 is not None  # the whole file was read
        return DelimitedScan(reader.sha256, reader.size, self.encoding, self.delimiter, self.columns, self.rows,
                             profile, self.skipped)

    # --- the pass over the file ------------------------------------------------------------

    def _read_all(self, data: Iterator[bytes], total: int) -> None:
        carry, done, self.line, self._header_seen = b"", 0, 1, False
        for block in data:
            done += len(block)
            first_end = block.find(b"\n") + 1
            if not first_end:
                carry += block
                if len(carry) > MAX_RECORD:
                    raise MalformedTable(self.path, LocalText("resource.reason.line_too_long", self.line,
                                                              MAX_RECORD >> 20))
                continue
            self._lines(carry + block[:first_end])  # the line that straddles two blocks
            last_end = block.rfind(b"\n") + 1
            if last_end > first_end:
                self._pieces(block, first_end, last_end)
            carry = block[last_end:]
            if self._progress:
                self._progress(min(done, total), total)
        if carry.strip():
            self._lines(carry + b"\n")
        if not self._header_seen:
            self._lines(b"\n")
        if self._pending:
            raise MalformedTable(self.path, LocalText("resource.reason.quote_not_closed", self.line))

    def _lines(self, raw: bytes) -> None:
        """Whole lines outside the block loop: the header, then the lines that straddle blocks."""
        if not self._header_seen:
            header_end = raw.index(b"\n") + 1
            self._header(self._decode_header(raw[:header_end]))
            self.line, raw = 2, raw[header_end:]
        if raw:
            self._pieces(raw, 0, len(raw))

    def _decode_header(self, raw: bytes) -> str:
        try:
            return raw.decode(self._codec)
        except UnicodeDecodeError:
            raise MalformedTable(self.path, LocalText("resource.reason.header_not_text", self.encoding)) from None

    def _header(self, text: str) -> None:
        text = text.rstrip("\r\n")
        self.delimiter = self._delimiter or guess_delimiter(text, self.path.suffix.lower())
        self.columns = column_names(next(csv.reader([text], delimiter=self.delimiter), []))
        self._header_seen = True
        self.profiler = TableProfiler(self.columns, rng=self._rng)
        self._pending = b""
        self._sample: list[str] = []
        self._sample_size = 0

    def _pieces(self, buf: bytes, start: int, end: int) -> None:
        """``buf[start:end]`` (whole lines) in pieces of about PIECE bytes, each ending with a line end."""
        view = memoryview(buf)
        while start < end:
            stop = end if end - start <= PIECE else buf.find(b"\n", start + PIECE - 1, end) + 1
            if self._pending or (buf.find(b'"', start, stop) >= 0 and buf.count(b'"', start, stop) % 2):
                self._quoted_piece(buf[start:stop])
            else:
                self._piece(view[start:stop])  # decoded straight from the block: no copy
            start = stop

    def _quoted_piece(self, raw: bytes) -> None:
        """A piece that ends inside a quoted field waits for the next one (bounded by MAX_RECORD)."""
        raw = self._pending + raw
        if raw.count(b'"') % 2:
            self._pending = raw
            if len(raw) > MAX_RECORD:
                raise MalformedTable(self.path, LocalText("resource.reason.quote_not_closed", self.line))
            return
        self._pending = b""
        self._piece(raw)

    def _piece(self, raw: bytes | memoryview) -> None:
        first_line = self.line
        text = self._decode(raw, first_line)  # keeps every line (a bad one becomes blank)
        lines = text.count("\n")
        self.line += lines
        share = self._fraction if first_line > 2 else 1.0
        if '"' in text:
            self._quoted(text, first_line, share)
        else:
            self._plain(text, first_line, lines, share)

    def _decode(self, raw: bytes | memoryview, first_line: int) -> str:
        try:
            return str(raw, self._codec)
        except UnicodeDecodeError:
            pass
        out = []
        for i, line in enumerate(bytes(raw).split(b"\n")[:-1]):
            try:
                out.append(line.decode(self._codec))
            except UnicodeDecodeError:
                self.skipped.add(first_line + i, "encoding")
                out.append("")  # a blank line keeps the numbering of the lines after it
        return "\n".join(out) + "\n"

    # --- unquoted pieces: counted in C, profiled by stride slices ------------------------------

    def _plain(self, text: str, first_line: int, lines: int, share: float) -> None:
        if "\r" in text:
            text = text.replace("\r\n", "\n")
        d, width = self.delimiter, len(self.columns)
        if width == 1 or text.count(d) == lines * (width - 1):
            self.rows += lines
            clean = True
        else:
            self.rows += self._check_lines(text, first_line)
            clean = False
        part = text if share >= 1.0 else _prefix(text, share)
        if part and clean and len(self.columns) > 1:
            self._sample.append(part)  # profiled later with other pieces' samples, in one batch
            self._sample_size += len(part)
            if self._sample_size >= SAMPLE_BATCH:
                self._flush_sample()
        elif part:
            self._profile_plain(part, clean)

    def _flush_sample(self) -> None:
        if self._sample:
            text, self._sample, self._sample_size = "".join(self._sample), [], 0
            self._profile_plain(text, True)

    def _check_lines(self, text: str, first_line: int) -> int:
        d, expected, good = self.delimiter, len(self.columns) - 1, 0
        for i, line in enumerate(text.split("\n")[:-1]):
            if not line.strip():
                continue
            if line.count(d) != expected:
                self.skipped.add(first_line + i, "fields")
            else:
                good += 1
        return good

    def _profile_plain(self, part: str, clean: bool) -> None:
        d, width = self.delimiter, len(self.columns)
        body = part[:-1]
        n = body.count("\n") + 1
        if clean and width > 1:
            cells = body.replace("\n", d + "\n" + d).split(d)
            stride = width + 1
            if len(cells) == n * width + n - 1 and cells[width::stride].count("\n") == n - 1:
                self.profiler.add_columns([cells[j::stride] for j in range(width)])
                return
        elif clean:
            self.profiler.add_columns([body.split("\n")])
            return
        rows = [line.split(d) for line in body.split("\n") if line.strip()]
        self.profiler.add_rows([r for r in rows if len(r) == width])

    # --- quoted pieces: the csv module ----------------------------------------------------------

    def _quoted(self, text: str, first_line: int, share: float) -> None:
        width, limit = len(self.columns), text.count("\n") * share
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=self.delimiter)
        batch, before = [], 0
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error:
                self.skipped.add(first_line + before, "malformed")
                before = reader.line_num
                continue
            start, before = first_line + before, reader.line_num
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if len(row) != width:
                self.skipped.add(start, "fields")
                continue
            self.rows += 1
            if reader.line_num <= limit or share >= 1.0:
                batch.append(row)
        if batch:
            self.profiler.add_rows(batch)


def _prefix(text: str, share: float) -> str:
    cut = text.find("\n", int(len(text) * share))
    return text[: cut + 1] if cut >= 0 else text


def _chain(first: list[bytes], rest: Iterator[bytes]) -> Iterator[bytes]:
    yield from first
    yield from rest


def lone_cr_as_lf(blocks: Iterator[bytes]) -> Iterator[bytes]:
    """``blocks`` with every ``\r`` that is not followed by ``\n`` replaced by ``\n`` (also one at the
    end of a block whose ``\n`` starts the next), so a line always ends with ``\n``. Byte-level:
    ``\r`` never occurs inside a character of the byte-oriented encodings (see :mod:`encoding`)."""
    held = b""
    for block in blocks:
        if held:
            block, held = held + block, b""
        if b"\r" not in block:
            if block:
                yield block
            continue
        if block.endswith(b"\r"):
            block, held = block[:-1], b"\r"
        if block.count(b"\r") != block.count(b"\r\n"):
            block = _LONE_CR.sub(b"\n", block)
        if block:
            yield block
    if held:
        yield b"\n"


def _transcode(blocks: Iterator[bytes], codec: str) -> Iterator[bytes]:
    """UTF-16/32 files become UTF-8 on the fly, so they can be cut at line ends like the rest."""
    decoder = codecs.getincrementaldecoder(codec)(errors="replace")
    for block in blocks:
        yield decoder.decode(block).encode("utf-8")
    yield decoder.decode(b"", final=True).encode("utf-8")
