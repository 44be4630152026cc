"""The content of a resource version: its rows or bytes, masked or not, for previews, delivery and
compute-to-data.

A hosted version is read from the vault (decrypted as it streams). A referenced one is read in
place, after checking that the file still has the size and modification time recorded with the
version: if it changed, the version's content no longer exists and the caller is told to rescan.

Pseudonymisation keys are per agreement: HMAC-SHA256(store subkey "pseudonym", agreement id), so
tokens are stable within one agreement and unlinkable across agreements, and survive passphrase
changes and restores (the subkey comes from a secret inside the encrypted database).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

from appliance.domain.catalog import Kind, Mode, Resource, ResourceVersion
from appliance.errors import InvalidMaskingRule, LocalText, ResourceError, SourceUnreadable, shown
from appliance.services.catalog import hosting, masking, paths, readers
from appliance.services.catalog import sensitive as sensitive_mod
from appliance.storage.vault import Vault

SAMPLE_CELL = 64  # characters of a sample value kept
SAMPLES_AGREEMENT = "dsnode:catalog-samples"
PREVIEW_AGREEMENT = "dsnode:mask-preview"

# How samples of a detected sensitive column are masked when the provider set no rule for it.
DEFAULT_SAMPLE_MASKS: dict[str, dict] = {
    "cn_id": {"rule": "mask", "keep_first": 3, "keep_last": 2},
    "bank_card": {"rule": "mask", "keep_first": 4, "keep_last": 4},
    "mobile": {"rule": "mask", "keep_first": 3, "keep_last": 4},
    "phone": {"rule": "mask", "keep_first": 3, "keep_last": 2},
    "email": {"rule": "mask", "keep_first": 1, "keep_last": 0},
    "person_name": {"rule": "mask", "keep_first": 1, "keep_last": 0},
    "address": {"rule": "generalise", "to": "city"},
    "license_plate": {"rule": "mask", "keep_first": 2, "keep_last": 0},
    "ip_address": {"rule": "mask", "keep_first": 3, "keep_last": 0},
    "uscc": {"rule": "mask", "keep_first": 2, "keep_last": 4},
}
TABLE_KINDS = (Kind.TABLE, Kind.SQLITE_TABLE)


def display_rules(columns: Sequence[str], sensitive: dict[str, str], rules: Sequence[dict]) -> list[dict]:
    """The provider's rules, plus default masks for sensitive columns without one; drop shows as ""."""
    ruled = {r["column"] for r in rules}
    out = [dict(r, rule="replace", value="") if r.get("rule") == "drop" else dict(r) for r in rules
           if r["column"] in columns]
    for column, kind in sensitive.items():
        if column not in ruled and column in columns and kind in DEFAULT_SAMPLE_MASKS:
            out.append({"column": column, **DEFAULT_SAMPLE_MASKS[kind]})
    return out


def mask_samples(columns: Sequence[str], samples: Sequence[Sequence], sensitive: dict[str, str],
                 rules: Sequence[dict], key: bytes) -> list[list[str]]:
    """The sample rows as shown: the provider's rules, default masks for sensitive columns, and
    for every other column each cell that is itself sensitive (an ID number in a column the scan
    did not label) masked as its kind is, so a sample never shows one in clear."""
    chosen = display_rules(columns, sensitive, rules)
    masker = masking.Masker(columns, chosen, pseudonym_key=key)
    covered = {r["column"] for r in chosen}
    out = []
    for row in samples:
        shown = masker.row(row)
        for j, column in enumerate(columns):
            if column not in covered and j < len(row):
                shown[j] = _cell_masked(row[j], shown[j])
        out.append([_short(v) for v in shown])
    return out


def _cell_masked(raw, shown):
    """``shown``, or ``raw`` masked when it is, or holds, a value of a sensitive kind."""
    text = "" if raw is None else str(raw).strip()
    if not text:
        return shown
    kind = sensitive_mod.cell_kind(text)
    if kind is None:
        return shown
    spec = DEFAULT_SAMPLE_MASKS.get(kind, {"keep_first": 0, "keep_last": 0})
    return masking.mask(text, spec.get("keep_first", 0), spec.get("keep_last", 0))


def _short(value) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= SAMPLE_CELL else text[: SAMPLE_CELL - 1] + "…"


class ResourceContent:
    def __init__(self, vault: Vault, subkey: Callable[[str], bytes]) -> None:
        self._vault = vault
        self._subkey = subkey

    def pseudonym_key(self, agreement_id: str) -> bytes:
        if not agreement_id:
            raise InvalidMaskingRule(LocalText("resource.reason.pseudonym_needs_agreement"))
        return hmac.new(self._subkey("pseudonym"), agreement_id.encode("utf-8"), hashlib.sha256).digest()

    def open_rows(self, r: Resource, v: ResourceVersion, mtime_ns: int | None,
                  options: dict) -> readers.RowSource:
        if r.kind not in TABLE_KINDS:
            raise ResourceError(LocalText("resource.reason.not_a_table", r.id, LocalText(f"resource.type.{r.kind}")))
        table = options.get("table")
        if r.mode == Mode.HOSTED:
            opener = self._opener(v.vault_object)
            if r.kind == Kind.SQLITE_TABLE:
                return hosting.hosted_sqlite_rows(opener(), v.column_names)
            return readers.open_rows(opener, v.format, table=table, encoding=v.encoding,
                                     delimiter=options.get("delimiter"), name=v.source)
        path = hosting.source_path(v.source, r.kind)
        if r.kind != Kind.SQLITE_TABLE:  # an SQLite table is read as it is now: other tables change the file
            self._check_unchanged(path, v, mtime_ns)
        return readers.open_rows(path, v.format, table=table, encoding=options.get("encoding") or v.encoding,
                                 delimiter=options.get("delimiter"))

    def open_bytes(self, r: Resource, v: ResourceVersion, mtime_ns: int | None, file: str | None = None) -> BinaryIO:
        """The bytes of a file (or of one file of a folder, by relative path) as a binary stream."""
        if r.kind == Kind.FOLDER:
            entry = next((f for f in v.files if f["path"] == file), None)
            if entry is None:
                raise ResourceError(LocalText("resource.reason.no_file", r.id, shown(file)))
            if r.mode == Mode.HOSTED:
                return self._vault.open_stream(entry["object"])
            path = Path(v.source) / entry["path"]
            if _stat(path)[0] != entry["size"]:
                raise ResourceError(LocalText("resource.reason.changed_since", path, v.version))
            return _open(path)
        if r.kind in (Kind.API, Kind.SQLITE_TABLE):
            raise ResourceError(LocalText("resource.reason.read_as_rows", r.id, LocalText(f"resource.type.{r.kind}")))
        if r.mode == Mode.HOSTED:
            assert v.vault_object is not None  # a hosted version has its copy
            return self._vault.open_stream(v.vault_object)
        path = Path(v.source)
        self._check_unchanged(path, v, mtime_ns)
        return _open(path)

    def _opener(self, object_id: str | None):
        if object_id is None:
            raise ResourceError(LocalText("resource.reason.no_hosted_copy"))
        return lambda: self._vault.open_stream(object_id)

    @staticmethod
    def _check_unchanged(path: Path, v: ResourceVersion, mtime_ns: int | None) -> None:
        size, mtime = _stat(path)
        if size != v.size or (mtime_ns is not None and mtime != mtime_ns):
            raise ResourceError(LocalText("resource.reason.changed_since_registered", path, v.version))


def _stat(path: Path) -> tuple[int, int]:
    try:
        st = path.stat()
    except OSError as e:
        raise SourceUnreadable(path, paths.os_reason(e)) from None
    return st.st_size, st.st_mtime_ns


def _open(path: Path) -> BinaryIO:
    try:
        return open(path, "rb")
    except OSError as e:
        raise SourceUnreadable(path, paths.os_reason(e)) from None
