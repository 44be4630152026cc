"""Reading a source and describing it: what registration stores and ``scan`` shows, before any write.

``Scanner.scan(source, options)`` decides the kind and format, reads the source once (streaming),
and returns a :class:`ScanResult`: hash, size, schema, quality, sensitive findings, samples (not
yet masked) and what was skipped. It touches nothing in the store.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from appliance.domain.catalog import Column, Kind, suggest_sensitivity
from appliance.errors import LocalText, SourceUnreadable, UnsupportedSource
from appliance.services.catalog import encoding as enc
from appliance.services.catalog import paths, readers, sensitive
from appliance.services.catalog.delimited import EXACT_BYTES, SAMPLE_BYTES, DelimitedScanner
from appliance.services.catalog.hashing import hash_file
from appliance.services.catalog.profiling import TableProfile, TableProfiler

Progress = Callable[[int, int], None]

TABLE_FORMATS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".json": "json", ".jsonl": "jsonl",
                 ".ndjson": "jsonl", ".xlsx": "xlsx", ".xlsm": "xlsx"}
SQLITE_SUFFIXES = {".db", ".sqlite", ".sqlite3", ".db3"}
SQLITE_MAGIC = b"SQLite format 3\x00"
ROW_BATCH = 5000


@dataclass(frozen=True)
class ScanOptions:
    kind: Kind | None = None
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    table: str | None = None  # SQLite table or Excel sheet
    encoding: str | None = None
    delimiter: str | None = None
    exact: bool = False  # profile every row, however large the file


@dataclass
class ScanResult:
    kind: Kind
    source: str  # resolved path (+ "#table" for an SQLite table) or the URL: identifies the resource
    path: Path | None
    format: str
    size: int
    sha256: str
    mtime_ns: int | None = None
    encoding: str | None = None
    row_count: int | None = None
    columns: list[Column] = field(default_factory=list)
    time_range: dict | None = None
    samples: list[list[str]] = field(default_factory=list)  # NOT masked yet
    quality: dict | None = None
    findings: list[sensitive.Finding] = field(default_factory=list)
    skipped: dict = field(default_factory=dict)
    files: list[dict] = field(default_factory=list)
    table: str | None = None
    suggested_sensitivity: int | None = None

    @property
    def title_hint(self) -> str:
        if self.kind == Kind.API:
            return urlsplit(self.source).netloc + urlsplit(self.source).path
        name = self.path.name if self.path else self.source
        return f"{name} / {self.table}" if self.table else name


def is_url(source: str) -> bool:
    return bool(re.match(r"(?i)https?://", source))


class Scanner:
    def __init__(self, roots: Sequence[Path], *, exact_bytes: int = EXACT_BYTES, sample_bytes: int = SAMPLE_BYTES,
                 rng: random.Random | None = None) -> None:
        self.roots = list(roots)
        self.exact_bytes = exact_bytes
        self.sample_bytes = sample_bytes
        self._rng = rng or random.Random(0)

    def scan(self, source: str | Path, options: ScanOptions = ScanOptions(),
             progress: Progress | None = None) -> ScanResult:
        if isinstance(source, str) and is_url(source):
            return self._api(source, options)
        path = paths.check_allowed(Path(source), self.roots)
        if not _utf8(str(path)):
            raise UnsupportedSource(_printable(path), LocalText("resource.reason.name_not_utf8"))
        kind = options.kind or self._kind_of(path)
        if kind == Kind.API:
            raise UnsupportedSource(source, LocalText("resource.reason.api_needs_url"))
        if kind == Kind.FOLDER:
            if not path.is_dir():
                raise UnsupportedSource(source, LocalText("resource.reason.not_a_folder"))
            return self._folder(path, options, progress)
        if not path.is_file():
            raise UnsupportedSource(source, LocalText("resource.reason.is_a_folder") if path.is_dir()
                                    else LocalText("resource.reason.not_a_regular_file"))
        if kind == Kind.SQLITE_TABLE:
            return self._sqlite(path, options, progress)
        if kind == Kind.TABLE:
            return self._table(path, options, progress)
        return self._file(path, progress)

    @staticmethod
    def _kind_of(path: Path) -> Kind:
        if path.is_dir():
            return Kind.FOLDER
        suffix = path.suffix.lower()
        if suffix in TABLE_FORMATS:
            return Kind.TABLE
        if suffix == ".xls":
            raise UnsupportedSource(path, LocalText("resource.reason.old_xls"))
        if suffix in SQLITE_SUFFIXES or _head(path, 16) == SQLITE_MAGIC:
            return Kind.SQLITE_TABLE
        return Kind.FILE

    # --- kinds ----------------------------------------------------------------------------------

    def _api(self, url: str, options: ScanOptions) -> ScanResult:
        parts = urlsplit(url)
        if not parts.netloc or any(c.isspace() for c in url):
            raise UnsupportedSource(url, LocalText("resource.reason.bad_url"))
        digest = hashlib.sha256(json.dumps({"url": url}, sort_keys=True).encode()).hexdigest()
        return ScanResult(kind=Kind.API, source=url, path=None, format="api", size=0, sha256=digest)

    def _file(self, path: Path, progress: Progress | None) -> ScanResult:
        st = path.stat()
        done = [0]

        def step(n: int) -> None:
            done[0] += n
            if progress:
                progress(done[0], st.st_size)

        digest, size = hash_file(path, step)
        return ScanResult(kind=Kind.FILE, source=str(path), path=path, format=_file_format(path), size=size,
                          sha256=digest, mtime_ns=st.st_mtime_ns)

    def _folder(self, path: Path, options: ScanOptions, progress: Progress | None) -> ScanResult:
        listing = paths.walk_folder(path, self.roots, options.include, options.exclude)
        total, done = sum(f.size for f in listing.files), [0]
        files: list[dict[str, Any]] = []
        skipped = list(listing.skipped)

        def step(n: int) -> None:
            done[0] += n
            if progress:
                progress(done[0], total)

        for entry in listing.files:
            if not _utf8(entry.rel):  # a name the store cannot hold, e.g. GBK bytes on a share mounted as UTF-8
                skipped.append((_printable(entry.rel), "name is not UTF-8"))
                continue
            try:
                digest, size = hash_file(entry.path, step)
            except SourceUnreadable as e:
                skipped.append((entry.rel, str(e.args[1])))
                continue
            files.append({"path": entry.rel, "size": size, "sha256": digest})
        manifest = "".join(f"{f['sha256']}  {f['size']}  {f['path']}\n" for f in files).encode("utf-8")
        report = {"count": len(skipped), "reasons": _count_reasons(skipped), "first": [list(s) for s in skipped[:20]],
                  "excluded": listing.excluded} if skipped or listing.excluded else {}
        return ScanResult(kind=Kind.FOLDER, source=str(path), path=path, format="folder",
                          size=sum(f["size"] for f in files), sha256=hashlib.sha256(manifest).hexdigest(),
                          mtime_ns=path.stat().st_mtime_ns, skipped=report, files=files)

    def _table(self, path: Path, options: ScanOptions, progress: Progress | None) -> ScanResult:
        fmt = TABLE_FORMATS.get(path.suffix.lower(), "csv")
        mtime = path.stat().st_mtime_ns
        if options.encoding is not None:
            enc.codec_of(options.encoding)
        if fmt in ("csv", "tsv"):
            scan = DelimitedScanner(path, delimiter=options.delimiter or ("\t" if fmt == "tsv" else None),
                                    encoding=options.encoding, progress=progress, rng=self._rng,
                                    exact_bytes=1 << 62 if options.exact else self.exact_bytes,
                                    sample_bytes=self.sample_bytes).run()
            result = ScanResult(kind=Kind.TABLE, source=str(path), path=path, format=fmt, size=scan.size,
                                sha256=scan.sha256, mtime_ns=mtime, encoding=scan.encoding, row_count=scan.rows,
                                skipped=scan.skipped.to_json())
            return self._described(result, scan.profile)
        digest, size = hash_file(path, _scaled(progress, path.stat().st_size))
        with readers.open_rows(path, fmt, table=options.table, encoding=options.encoding) as rows:
            profile = self._profile_rows(rows)
        result = ScanResult(kind=Kind.TABLE, source=str(path), path=path, format=fmt, size=size, sha256=digest,
                            mtime_ns=mtime, encoding=rows.encoding, row_count=profile.profiled_rows,
                            table=options.table if fmt == "xlsx" else None)
        return self._described(result, profile)

    def _sqlite(self, path: Path, options: ScanOptions, progress: Progress | None) -> ScanResult:
        if options.table is None:
            tables = readers.sqlite_tables(path)
            if len(tables) != 1:
                raise readers.table_not_chosen(path, tables)
            options = dataclasses.replace(options, table=tables[0])
        digest, size = hashlib.sha256(), 0
        with readers.sqlite_rows(path, options.table) as rows:
            profiler = TableProfiler(rows.columns, rng=self._rng)
            for batch in _batches(rows):
                for row in batch:  # content hash of the table, independent of the rest of the file
                    line = readers.row_line(row)
                    digest.update(line)
                    size += len(line)
                profiler.add_rows(batch)
            profile = profiler.finish()
        result = ScanResult(kind=Kind.SQLITE_TABLE, source=f"{path}#{options.table}", path=path, format="sqlite",
                            size=size, sha256=digest.hexdigest(), mtime_ns=path.stat().st_mtime_ns,
                            row_count=profile.profiled_rows, table=options.table)
        return self._described(result, profile)

    def _profile_rows(self, rows: readers.RowSource) -> TableProfile:
        profiler = TableProfiler(rows.columns, rng=self._rng)
        for batch in _batches(rows):
            profiler.add_rows(batch)
        return profiler.finish()

    @staticmethod
    def _described(result: ScanResult, profile: TableProfile) -> ScanResult:
        findings = sensitive.detect([c.name for c in profile.columns], profile.values)
        kinds = {f.column: f.kind for f in findings}
        # A sensitive column's range would be two of its values: keep its type and counts only.
        result.columns = [dataclasses.replace(c, sensitive=kinds[c.name], min=None, max=None) if c.name in kinds
                          else c for c in profile.columns]
        result.findings = findings
        result.quality = profile.quality
        result.time_range = profile.time_range
        result.samples = profile.samples
        result.suggested_sensitivity = suggest_sensitivity(kinds.values())
        return result


def _batches(rows: readers.RowSource):
    batch = []
    for row in rows:
        batch.append(row)
        if len(batch) >= ROW_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _scaled(progress: Progress | None, total: int):
    done = [0]

    def step(n: int) -> None:
        done[0] += n
        if progress:
            progress(done[0], total)

    return step


def _head(path: Path, n: int) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(n)
    except OSError:
        return b""


def _utf8(name: str) -> bool:
    """Whether a file name is text: on Linux, bytes that are not UTF-8 come back as lone surrogates."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _printable(name: str | Path) -> str:
    return str(name).encode("utf-8", "backslashreplace").decode("utf-8")


def _count_reasons(skipped: list[tuple[str, str]]) -> dict:
    out: dict[str, int] = {}
    for _, reason in skipped:
        out[reason] = out.get(reason, 0) + 1
    return out


def _file_format(path: Path) -> str:
    suffix = path.suffix.lower().lstrip(".")
    if suffix:
        return suffix
    head = _head(path, 4096)
    return "text" if head and b"\x00" not in head else "binary"
