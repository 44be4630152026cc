"""Data resources of the catalog: what a resource is, its versions, labels and events. No I/O.

A *resource* is something the provider registers (a file, a folder, a table, an SQLite table or
an API endpoint). Each registration or detected change of its content makes a new *version*,
which records the content hash and what was extracted from it (schema, quality, sensitive fields).
Classification follows GB/T 43697-2024 (一般/重要/核心数据) and a provider-set sensitivity level.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

RESOURCE_URN = "urn:dsnode:resource:"


class Kind(StrEnum):
    FILE = "file"
    FOLDER = "folder"
    TABLE = "table"  # CSV, TSV, JSON, JSON Lines, Excel
    SQLITE_TABLE = "sqlite_table"
    API = "api"  # metadata only


class Mode(StrEnum):
    REFERENCED = "referenced"  # stays in place; the node records path, size and hash
    HOSTED = "hosted"  # copied into the node's encrypted vault


class Category(StrEnum):
    """GB/T 43697-2024 data categories."""

    GENERAL = "general"  # 一般数据
    IMPORTANT = "important"  # 重要数据
    CORE = "core"  # 核心数据


SENSITIVITY_LEVELS = (1, 2, 3, 4)  # 1 public, 2 internal, 3 sensitive, 4 highly sensitive


class ResourceAction(StrEnum):
    """Evidence actions of the resource catalog."""

    REGISTERED = "resource.registered"
    VERSIONED = "resource.versioned"
    UPDATED = "resource.updated"
    LABELLED = "resource.labelled"
    MASKING_SET = "resource.masking_set"
    REMOVED = "resource.removed"


# Kinds of sensitive field and the level each suggests (4: sensitive personal information such as
# identity numbers and financial accounts; 3: other personal information; 2: enterprise registry data).
SENSITIVE_KINDS: dict[str, int] = {
    "cn_id": 4,
    "bank_card": 4,
    "mobile": 3,
    "phone": 3,
    "email": 3,
    "person_name": 3,
    "address": 3,
    "license_plate": 3,
    "ip_address": 3,
    "uscc": 2,
}
DEFAULT_SUGGESTED_LEVEL = 2  # nothing detected: internal data until the provider says otherwise


def suggest_sensitivity(kinds: Iterable[str]) -> int:
    """The level detection suggests for a resource with these sensitive field kinds."""
    return max((SENSITIVE_KINDS.get(k, DEFAULT_SUGGESTED_LEVEL) for k in kinds), default=DEFAULT_SUGGESTED_LEVEL)


def is_resource_id(text: str) -> bool:
    return text.startswith(RESOURCE_URN)


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # integer | decimal | date | datetime | boolean | text | (native types of the source)
    sensitive: str | None = None  # a key of SENSITIVE_KINDS, or None
    nulls: int = 0
    distinct: int | None = None
    distinct_estimated: bool = False
    valid: float | None = None  # share of non-empty values of the column's type
    min: str | None = None
    max: str | None = None

    def to_json(self) -> dict:
        data = {"name": self.name, "type": self.type, "sensitive": self.sensitive, "nulls": self.nulls,
                "distinct": self.distinct, "distinct_estimated": self.distinct_estimated, "valid": self.valid}
        if self.min is not None:
            data["min"], data["max"] = self.min, self.max
        return data

    @classmethod
    def from_json(cls, data: dict) -> Column:
        return cls(name=data["name"], type=data.get("type", "text"), sensitive=data.get("sensitive"),
                   nulls=data.get("nulls", 0), distinct=data.get("distinct"),
                   distinct_estimated=data.get("distinct_estimated", False), valid=data.get("valid"),
                   min=data.get("min"), max=data.get("max"))


@dataclass(frozen=True)
class ResourceVersion:
    resource_id: str
    version: int
    created: str
    source: str
    size: int
    sha256: str
    format: str = ""
    encoding: str | None = None
    row_count: int | None = None
    columns: tuple[Column, ...] = ()
    time_range: dict | None = None  # {"column", "min", "max"}
    samples: tuple[tuple, ...] = ()  # a few rows, masked
    quality: dict | None = None
    sensitive: tuple[dict, ...] = ()  # the detection report: kinds, confidence, counts, never values
    skipped: dict = field(default_factory=dict)  # {"count": n, "reasons": {...}, "first": [...]}
    files: tuple[dict, ...] = ()  # folders: [{"path", "size", "sha256", "object"?}]
    vault_object: str | None = None

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


@dataclass(frozen=True)
class Resource:
    id: str
    kind: Kind
    mode: Mode
    title: str
    source: str
    current_version: int
    created: str
    updated: str
    description: str = ""
    keywords: tuple[str, ...] = ()
    domain: str = ""
    owner: str = ""
    update_frequency: str = ""
    category: Category = Category.GENERAL
    sensitivity: int | None = None
    suggested_sensitivity: int | None = None
    masking: tuple[dict, ...] = ()
    removed: str | None = None

    @property
    def short_id(self) -> str:
        return self.id.removeprefix(RESOURCE_URN)[:8]


EDITABLE_FIELDS = ("title", "description", "keywords", "domain", "owner", "update_frequency")


# --- events on the node's bus (emitted after the transaction committed) --------------------------


@dataclass(frozen=True)
class ResourceRegistered:
    resource_id: str
    version: int


@dataclass(frozen=True)
class ResourceVersioned:
    resource_id: str
    version: int


@dataclass(frozen=True)
class ResourceUpdated:
    resource_id: str
    fields: tuple[str, ...]


@dataclass(frozen=True)
class ResourceLabelled:
    resource_id: str
    category: str
    sensitivity: int | None


@dataclass(frozen=True)
class ResourceMaskingSet:
    resource_id: str
    columns: tuple[str, ...]


@dataclass(frozen=True)
class ResourceRemoved:
    resource_id: str
