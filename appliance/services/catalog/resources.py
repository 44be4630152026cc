"""ResourceService: registering data resources, their versions, labels, metadata and masking rules.

Every change follows one pattern: read and profile the source *outside* any transaction (that
may take minutes and may fail), copy it into the vault if it is hosted, then write the rows and the
evidence entry in one ``db.write``; emit the event after the commit. A failure anywhere leaves the
store as it was (vault files written for a failed registration are discarded, or removed as
orphans at the next open).
"""

from __future__ import annotations

import builtins
import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.clock import Clock, rfc3339
from appliance.domain.catalog import (
    EDITABLE_FIELDS, RESOURCE_URN, SENSITIVITY_LEVELS, Category, Kind, Mode, Resource, ResourceAction,
    ResourceLabelled, ResourceMaskingSet, ResourceRegistered, ResourceRemoved, ResourceUpdated, ResourceVersion,
    ResourceVersioned,
)
from appliance.errors import (
    AmbiguousResourceId, ApplianceError, InvalidLabel, InvalidMaskingRule, LocalText, ResourceError, ResourceNotFound,
    SourceUnreadable, UnsupportedSource, shown,
)
from appliance.events import EventBus
from appliance.services.catalog import content as content_mod
from appliance.services.catalog import hosting, masking, paths
from appliance.services.catalog import resource_store as store
from appliance.services.catalog.delimited import EXACT_BYTES, SAMPLE_BYTES
from appliance.services.catalog.readers import RowSource
from appliance.services.catalog.scanner import Progress, ScanOptions, ScanResult, Scanner
from appliance.services.evidence import EvidenceLog
from appliance.storage.database import Database
from appliance.storage.vault import Vault

log = logging.getLogger(__name__)

TITLE_MAX, TEXT_MAX = 200, 4000


@dataclass(frozen=True)
class Registration:
    resource: Resource
    version: ResourceVersion
    created: bool  # False: the source was registered already
    changed: bool  # a new version was made


@dataclass(frozen=True)
class RescanOutcome:
    resource_id: str
    status: str  # unchanged | new_version | missing | failed
    version: int
    reason: str = ""


class ResourceService:
    def __init__(self, db: Database, evidence: EvidenceLog, clock: Clock, bus: EventBus, vault: Vault,
                 subkey: Callable[[str], bytes], *, allowed_roots: Sequence[Path] | None = None,
                 exact_bytes: int = EXACT_BYTES, sample_bytes: int = SAMPLE_BYTES,
                 new_uuid: Callable[[], uuid.UUID] = uuid.uuid4) -> None:
        self._db = db
        self._evidence = evidence
        self._clock = clock
        self._bus = bus
        self._vault = vault
        self._new_uuid = new_uuid
        self.allowed_roots = list(allowed_roots) if allowed_roots is not None else paths.default_roots()
        self.exact_bytes = exact_bytes
        self.sample_bytes = sample_bytes
        self.content = content_mod.ResourceContent(vault, subkey)

    def _scanner(self) -> Scanner:
        return Scanner(self.allowed_roots, exact_bytes=self.exact_bytes, sample_bytes=self.sample_bytes)

    def _now(self) -> str:
        return rfc3339(self._clock.now())

    # --- registering --------------------------------------------------------------------------

    def scan(self, source: str | Path, *, kind: str | None = None, include: Iterable[str] = (),
             exclude: Iterable[str] = (), table: str | None = None, encoding: str | None = None,
             delimiter: str | None = None, exact: bool = False, progress: Progress | None = None) -> ScanResult:
        """A dry run: what registering ``source`` would record (sensitive report included). Changes nothing."""
        options = ScanOptions(_choice(Kind, kind, "kind") if kind else None, tuple(include), tuple(exclude), table,
                              encoding, delimiter, exact)
        return self._scanner().scan(source, options, progress)

    def register(self, source: str | Path, *, kind: str | None = None, mode: str = Mode.REFERENCED,
                 title: str | None = None, description: str = "", keywords: Iterable[str] = (), domain: str = "",
                 owner: str = "", update_frequency: str = "", include: Iterable[str] = (),
                 exclude: Iterable[str] = (), table: str | None = None, encoding: str | None = None,
                 delimiter: str | None = None, exact: bool = False, progress: Progress | None = None) -> Registration:
        """Register a file, folder, table, SQLite table or API URL; a known source gets a new version if changed."""
        mode = _choice(Mode, mode, "mode")
        meta = _metadata(title=title or "", description=description, keywords=keywords, domain=domain,
                         owner=owner, update_frequency=update_frequency)
        scan = self.scan(source, kind=kind, include=include, exclude=exclude, table=table, encoding=encoding,
                         delimiter=delimiter, exact=exact, progress=progress)
        existing = self._db.read(lambda c: store.find_by_source(c, scan.source))
        if existing is not None:
            if existing.mode != mode:
                raise UnsupportedSource(source, LocalText("resource.reason.registered_otherwise", existing.id,
                                                          LocalText(f"resource.mode.{existing.mode}")))
            version, changed = self._new_version_if_changed(existing, scan, progress)
            return Registration(self.get(existing.id), version, created=False, changed=changed)
        meta["title"] = meta["title"] or scan.title_hint
        options = {"path": str(scan.path) if scan.path else None, "table": scan.table, "include": list(include),
                   "exclude": list(exclude), "encoding": encoding, "delimiter": delimiter, "exact": exact}
        resource = Resource(id=RESOURCE_URN + str(self._new_uuid()), kind=scan.kind, mode=Mode(mode),
                            source=scan.source, current_version=1, created=self._now(), updated=self._now(),
                            suggested_sensitivity=scan.suggested_sensitivity, **meta)
        copy = hosting.host(self._vault, scan, progress) if mode == Mode.HOSTED else hosting.HostedCopy()
        version = self._version(resource, 1, scan, copy)
        payload = {"kind": str(resource.kind), "mode": str(mode), "title": resource.title, "source": scan.source,
                   "version": 1, **_version_summary(version)}

        def work(conn) -> None:
            store.insert_resource(conn, resource)
            store.set_options(conn, resource.id, options)
            store.insert_version(conn, version, scan.mtime_ns)
            hosting.record(self._vault, conn, copy, version.created)
            self._evidence.append(conn, action=ResourceAction.REGISTERED, subject=resource.id, payload=payload)

        self._write_with_copy(work, copy)
        log.info("registered resource %s (%s, %s)", resource.id, resource.kind, mode)
        self._bus.emit(ResourceRegistered(resource.id, 1))
        return Registration(resource, version, created=True, changed=True)

    def _version(self, r: Resource, n: int, scan: ScanResult, copy: hosting.HostedCopy) -> ResourceVersion:
        names = [c.name for c in scan.columns]
        sensitive = {c.name: c.sensitive for c in scan.columns if c.sensitive}
        key = self.content.pseudonym_key(content_mod.SAMPLES_AGREEMENT)
        samples = content_mod.mask_samples(names, scan.samples, sensitive, list(r.masking), key) if names else []
        return ResourceVersion(
            resource_id=r.id, version=n, created=self._now(), source=scan.source, size=scan.size, sha256=scan.sha256,
            format=scan.format, encoding=scan.encoding, row_count=scan.row_count, columns=tuple(scan.columns),
            time_range=scan.time_range, samples=tuple(tuple(s) for s in samples), quality=scan.quality,
            sensitive=tuple(f.to_json() for f in scan.findings), skipped=scan.skipped,
            files=tuple(copy.files or scan.files), vault_object=copy.object_id,
        )

    def _write_with_copy(self, work, copy: hosting.HostedCopy) -> None:
        try:
            self._db.write(work)
        except BaseException:
            hosting.discard(self._vault, copy)
            raise

    def _new_version_if_changed(self, r: Resource, scan: ScanResult,
                                progress: Progress | None) -> tuple[ResourceVersion, bool]:
        current = self.version(r.id)
        if scan.sha256 == current.sha256:
            return current, False
        copy = hosting.host(self._vault, scan, progress) if r.mode == Mode.HOSTED else hosting.HostedCopy()
        version = self._version(r, r.current_version + 1, scan, copy)
        payload = {"version": version.version, "previous_sha256": current.sha256, **_version_summary(version)}

        def work(conn) -> None:
            store.insert_version(conn, version, scan.mtime_ns)
            store.update_resource(conn, r.id, current_version=version.version, updated=version.created,
                                  suggested_sensitivity=scan.suggested_sensitivity)
            hosting.record(self._vault, conn, copy, version.created)
            self._evidence.append(conn, action=ResourceAction.VERSIONED, subject=r.id, payload=payload)

        self._write_with_copy(work, copy)
        self._bus.emit(ResourceVersioned(r.id, version.version))
        return version, True

    def rescan(self, resource_id: str, *, progress: Progress | None = None) -> RescanOutcome:
        """Read the source again; a changed one gets a new version, a vanished one is reported."""
        r = self.get(resource_id)
        if r.removed:
            raise ResourceNotFound(resource_id)
        if r.kind == Kind.API:
            return RescanOutcome(r.id, "unchanged", r.current_version)
        opts = self._db.read(lambda c: store.load_options(c, r.id))
        source = hosting.source_path(r.source, r.kind)
        try:
            scan = self.scan(source, kind=r.kind, include=opts.get("include", ()), exclude=opts.get("exclude", ()),
                             table=opts.get("table"), encoding=opts.get("encoding"), delimiter=opts.get("delimiter"),
                             exact=opts.get("exact", False), progress=progress)
        except SourceUnreadable as e:
            return RescanOutcome(r.id, "missing", r.current_version, e.message())
        version, changed = self._new_version_if_changed(r, scan, progress)
        return RescanOutcome(r.id, "new_version" if changed else "unchanged", version.version)

    def rescan_all(self, *, progress: Progress | None = None) -> list[RescanOutcome]:
        outcomes = []
        for r in self.list():
            try:
                outcomes.append(self.rescan(r.id, progress=progress))
            except ApplianceError as e:
                outcomes.append(RescanOutcome(r.id, "failed", r.current_version, e.message()))
        return outcomes

    # --- reading ------------------------------------------------------------------------------

    def resolve(self, id_or_prefix: str) -> str:
        """The full id of a resource given its id, its uuid, or a unique prefix of the uuid."""
        text = id_or_prefix.strip()
        if len(text.removeprefix(RESOURCE_URN)) < 4:
            raise ResourceNotFound(id_or_prefix)
        ids = self._db.read(lambda c: store.ids_with_prefix(c, text))
        if not ids:
            raise ResourceNotFound(id_or_prefix)
        if len(ids) > 1:
            raise AmbiguousResourceId(id_or_prefix, ", ".join(i.removeprefix(RESOURCE_URN)[:12] for i in ids[:5]))
        return ids[0]

    def get(self, resource_id: str) -> Resource:
        rid = self.resolve(resource_id)
        return self._db.read(lambda c: _load(c, rid))

    def list(self, *, include_removed: bool = False) -> list[Resource]:
        return self._db.read(lambda c: store.list_resources(c, include_removed))

    def page(self, *, limit: int = 100, after: str | None = None, text: str | None = None) -> builtins.list[Resource]:
        """A page of the register, newest first: ``limit`` resources after the one whose id is ``after``,
        those whose title, source or description contains ``text`` when given (for lists that never
        load the whole register)."""
        return self._db.read(lambda c: store.page_resources(c, limit=limit, after=after, text=text or None))

    def count(self, *, text: str | None = None) -> int:
        """How many resources :meth:`page` pages through."""
        return self._db.read(lambda c: store.count_resources(c, text=text or None))

    def version(self, resource_id: str, version: int | None = None) -> ResourceVersion:
        return self._version_row(resource_id, version)[0]

    def versions(self, resource_id: str) -> builtins.list[ResourceVersion]:
        rid = self.resolve(resource_id)
        return self._db.read(lambda c: store.load_versions(c, rid))

    def _version_row(self, resource_id: str, version: int | None) -> tuple[ResourceVersion, int | None]:
        r = self.get(resource_id)
        n = version or r.current_version
        found = self._db.read(lambda c: store.load_version(c, r.id, n))
        if found is None:
            raise ResourceError(LocalText("resource.reason.no_version", r.id, n))
        return found

    # --- describing, labelling, masking -------------------------------------------------------

    def update(self, resource_id: str, **changes) -> Resource:
        """Edit title, description, keywords, domain, owner or update_frequency."""
        unknown = set(changes) - set(EDITABLE_FIELDS)
        if unknown:
            raise ResourceError(LocalText("resource.reason.not_editable", ", ".join(sorted(unknown))))
        fields = _metadata(**{k: v for k, v in changes.items() if v is not None})
        if "title" in fields and not fields["title"]:
            raise ResourceError(LocalText("resource.reason.empty_title"))
        return self._change(resource_id, ResourceAction.UPDATED, fields,
                            {"fields": {k: list(v) if k == "keywords" else v for k, v in fields.items()}},
                            lambda rid: ResourceUpdated(rid, tuple(sorted(fields))))

    def label(self, resource_id: str, *, category: str | None = None, sensitivity: int | None = None) -> Resource:
        """Set the GB/T 43697-2024 category and/or the sensitivity level (1-4)."""
        if category is None and sensitivity is None:
            raise InvalidLabel(LocalText("resource.reason.label_nothing"))
        fields: dict[str, Any] = {}
        if category is not None:
            if category not in {c.value for c in Category}:
                raise InvalidLabel(LocalText("resource.reason.unknown_category", shown(category)))
            fields["category"] = category
        if sensitivity is not None:
            if isinstance(sensitivity, bool) or sensitivity not in SENSITIVITY_LEVELS:
                raise InvalidLabel(LocalText("resource.reason.bad_level", shown(sensitivity)))
            fields["sensitivity"] = int(sensitivity)
        r = self.get(resource_id)
        final = {"category": fields.get("category", str(r.category)),
                 "sensitivity": fields.get("sensitivity", r.sensitivity)}
        return self._change(r.id, ResourceAction.LABELLED, fields, {**final, "suggested": r.suggested_sensitivity},
                            lambda rid: ResourceLabelled(rid, final["category"], final["sensitivity"]))

    def set_masking(self, resource_id: str, rules: Sequence[dict]) -> Resource:
        """Replace the resource's masking rules (checked against its current columns)."""
        r = self.get(resource_id)
        parsed = masking.parse_rules(rules)
        columns = self.version(r.id).column_names
        if parsed and r.kind not in content_mod.TABLE_KINDS:
            raise InvalidMaskingRule(LocalText("resource.reason.mask_not_table", r.id,
                                               LocalText(f"resource.type.{r.kind}")))
        masking.Masker(columns, parsed, pseudonym_key=bytes(32))  # unknown columns raise here
        as_json = [p.to_json() for p in parsed]
        return self._change(r.id, ResourceAction.MASKING_SET, {"masking": as_json}, {"rules": as_json},
                            lambda rid: ResourceMaskingSet(rid, tuple(p.column for p in parsed)))

    def set_column_rule(self, resource_id: str, rule: dict) -> Resource:
        """Add or replace the rule of one column, keeping the others."""
        r = self.get(resource_id)
        column = masking.parse_rule(rule).column
        return self.set_masking(r.id, [x for x in r.masking if x["column"] != column] + [rule])

    def clear_column_rule(self, resource_id: str, column: str) -> Resource:
        r = self.get(resource_id)
        if not any(x["column"] == column for x in r.masking):
            raise InvalidMaskingRule(LocalText("resource.reason.column_no_rule", column))
        return self.set_masking(r.id, [x for x in r.masking if x["column"] != column])

    def remove(self, resource_id: str) -> None:
        """Take a resource out of the catalog; its versions and evidence stay for lineage and audit."""
        r = self.get(resource_id)
        if r.removed:
            raise ResourceNotFound(resource_id)
        self._change(r.id, ResourceAction.REMOVED, {"removed": self._now()}, {"title": r.title},
                     lambda rid: ResourceRemoved(rid))

    def _change(self, resource_id: str, action: ResourceAction, fields: dict, payload: dict, event) -> Resource:
        rid = self.resolve(resource_id)
        now = self._now()

        def work(conn) -> Resource:
            if _load(conn, rid).removed and action != ResourceAction.REMOVED:
                raise ResourceNotFound(resource_id)
            store.update_resource(conn, rid, **fields, updated=now)
            self._evidence.append(conn, action=action, subject=rid, payload=payload)
            return _load(conn, rid)

        updated = self._db.write(work)
        self._bus.emit(event(rid))
        return updated

    # --- content (delivery, compute-to-data, previews) -----------------------------------------

    def open_rows(self, resource_id: str, version: int | None = None) -> RowSource:
        """The unmasked rows of a table version. Close it (``with``) when done."""
        v, mtime = self._version_row(resource_id, version)
        r = self.get(resource_id)
        return self.content.open_rows(r, v, mtime, self._db.read(lambda c: store.load_options(c, r.id)))

    def open_masked_rows(self, resource_id: str, *, agreement_id: str, version: int | None = None,
                         rules: Sequence[dict] | None = None) -> RowSource:
        """Rows with the resource's masking rules (or ``rules``) applied, pseudonymised for one agreement."""
        r = self.get(resource_id)
        src = self.open_rows(r.id, version)
        masker = masking.Masker(src.columns, r.masking if rules is None else rules,
                                pseudonym_key=self.content.pseudonym_key(agreement_id))
        return RowSource(masker.columns, masker.apply(src), src.close)

    def open_bytes(self, resource_id: str, version: int | None = None, *, file: str | None = None):
        v, mtime = self._version_row(resource_id, version)
        return self.content.open_bytes(self.get(resource_id), v, mtime, file)

    def pseudonym_key(self, agreement_id: str) -> bytes:
        return self.content.pseudonym_key(agreement_id)

    def mask_preview(self, resource_id: str, *, rules: Sequence[dict] | None = None, n: int = 5) -> masking.Preview:
        """Before/after on the first ``n`` rows of the current version (pseudonyms with a preview key)."""
        r = self.get(resource_id)
        with self.open_rows(r.id) as src:
            return masking.preview(src.columns, src, r.masking if rules is None else rules, n=n,
                                   pseudonym_key=self.content.pseudonym_key(content_mod.PREVIEW_AGREEMENT))

    def samples(self, resource_id: str) -> tuple[builtins.list[str], builtins.list[builtins.list[str]]]:
        """Columns and sample rows of the current version as a catalog may show them (rules applied)."""
        r = self.get(resource_id)
        v = self.version(r.id)
        names = v.column_names
        masker = masking.Masker(names, [x for x in r.masking if x["rule"] in ("drop", "replace", "truncate")])
        return masker.columns, [list(masker.row(list(s))) for s in v.samples] if names else []


def _choice(enum, value, what: str):
    try:
        return enum(value)
    except ValueError:
        raise ResourceError(LocalText("resource.reason.bad_choice", what, ", ".join(e.value for e in enum),
                                      shown(value))) from None


def _load(conn, rid: str) -> Resource:
    r = store.load_resource(conn, rid)
    if r is None:
        raise ResourceNotFound(rid)
    return r


def _metadata(**fields) -> dict:
    out: dict[str, Any] = {}
    for name, value in fields.items():
        if name == "keywords":
            words = value.split(",") if isinstance(value, str) else list(value)
            out[name] = tuple(dict.fromkeys(w.strip() for w in words if str(w).strip()))
            continue
        if not isinstance(value, str):
            raise ResourceError(LocalText("resource.reason.not_text", name))
        limit = TITLE_MAX if name == "title" else TEXT_MAX
        if len(value) > limit:
            raise ResourceError(LocalText("resource.reason.too_long", name, limit))
        out[name] = value.strip()
    return out


def _version_summary(v: ResourceVersion) -> dict:
    return {"sha256": v.sha256, "size": v.size, "rows": v.row_count, "format": v.format,
            "sensitive": sorted({f["kind"] for f in v.sensitive}), "skipped": v.skipped.get("count", 0)}
