"""Validating documents against the Dataspace Protocol 2025-1 JSON schemas, offline.

The schemas live in ``assets/schemas/dsp-2025-1/`` (see the README there). They refer to each other
by ``$id`` (``https://w3id.org/dspace/2025/1/...``); every file goes into one ``referencing``
registry, so nothing is ever fetched from the network::

    problems = dsp_schema.problems(doc, "catalog/dataset-schema.json")   # [] when valid
"""

from __future__ import annotations

import json
from functools import lru_cache

from jsonschema import Draft201909Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT201909

from appliance.resources import assets_dir

BASE = "https://w3id.org/dspace/2025/1/"
DATASET = "catalog/dataset-schema.json"
CATALOG = "catalog/catalog-schema.json"
POLICY = "negotiation/contract-schema.json"


def schema_dir():
    return assets_dir() / "schemas" / "dsp-2025-1"


@lru_cache(maxsize=1)
def registry() -> Registry:
    resources = []
    for path in sorted(schema_dir().glob("*/*.json")):
        contents = json.loads(path.read_text(encoding="utf-8"))
        resources.append((contents["$id"], Resource.from_contents(contents, default_specification=DRAFT201909)))
    return Registry().with_resources(resources)


@lru_cache(maxsize=None)
def validator(name: str) -> Draft201909Validator:
    """A validator for the schema at ``name`` (relative to the protocol base, e.g. ``catalog/dataset-schema.json``)."""
    schema = registry().contents(BASE + name)
    return Draft201909Validator(schema, registry=registry())


def problems(doc: object, name: str = DATASET) -> list[str]:
    """Why ``doc`` does not validate against schema ``name``: one line per error, [] when it does."""
    errors = sorted(validator(name).iter_errors(doc), key=lambda e: list(e.absolute_path))
    out = []
    for e in errors:
        where = "/".join(str(p) for p in e.absolute_path) or "(root)"
        out.append(f"{where}: {e.message}")
    return out
