"""Validating documents against the Dataspace Protocol 2025-1 JSON schemas, offline.

The schemas live in ``assets/schemas/dsp-2025-1/`` (see the README there). They refer to each other
by ``$id`` (``https://w3id.org/dspace/2025/1/...``); every file goes into one ``referencing``
registry, so nothing is ever fetched from the network::

    problems = dsp_schema.problems(doc, "catalog/dataset-schema.json")   # [] when valid

Speed: every received contract message is validated, and jsonschema's general validator costs
0.1–0.4 ms a message (most of it resolving ``$ref``). So each schema is also compiled, once, into
a tree of small checks with every ``$ref`` resolved ahead of time (``compiled``), for the keywords
the DSP schemas use. A document the compiled check accepts is valid; anything else (a document it
rejects, or a schema using a keyword it does not know) goes to jsonschema, which stays the judge
and writes the error messages. tests/unit/test_dsp_schema.py checks both agree on valid documents
and on many broken ones.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import lru_cache
from numbers import Number
from typing import TYPE_CHECKING

from appliance.resources import assets_dir

if TYPE_CHECKING:  # imported when first needed: a node that starts need not load jsonschema (~70 ms)
    from jsonschema import Draft201909Validator
    from referencing import Registry

BASE = "https://w3id.org/dspace/2025/1/"
DATASET = "catalog/dataset-schema.json"
CATALOG = "catalog/catalog-schema.json"
POLICY = "negotiation/contract-schema.json"


def schema_dir():
    return assets_dir() / "schemas" / "dsp-2025-1"


@lru_cache(maxsize=1)
def registry() -> Registry:
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT201909

    resources = []
    for path in sorted(schema_dir().glob("*/*.json")):
        contents = json.loads(path.read_text(encoding="utf-8"))
        resources.append((contents["$id"], Resource.from_contents(contents, default_specification=DRAFT201909)))
    return Registry().with_resources(resources)


@lru_cache(maxsize=None)
def validator(name: str) -> Draft201909Validator:
    """A validator for the schema at ``name`` (relative to the protocol base, e.g. ``catalog/dataset-schema.json``)."""
    from jsonschema import Draft201909Validator

    schema = registry().contents(BASE + name)
    return Draft201909Validator(schema, registry=registry())


def problems(doc: object, name: str = DATASET) -> list[str]:
    """Why ``doc`` does not validate against schema ``name``: one line per error, [] when it does."""
    check = compiled(name)
    if check is not None and check(doc):
        return []
    errors = sorted(validator(name).iter_errors(doc), key=lambda e: list(e.absolute_path))
    out = []
    for e in errors:
        where = "/".join(str(p) for p in e.absolute_path) or "(root)"
        out.append(f"{where}: {e.message}")
    return out


# --- the compiled check ----------------------------------------------------------------------

Check = Callable[[object], bool]


class _Unsupported(Exception):
    """The schema uses a keyword the compiled check does not implement: jsonschema alone decides."""


# Keywords that never change whether a document is valid (draft 2019-09 does not assert "format").
_ANNOTATIONS = frozenset({"$schema", "$id", "$comment", "title", "description", "definitions", "$defs",
                          "format", "default", "examples", "deprecated", "readOnly", "writeOnly"})


@lru_cache(maxsize=None)
def compiled(name: str) -> Check | None:
    """A fast yes/no check for schema ``name`` (True only for a valid document), or None when the
    schema uses a keyword it does not implement."""
    try:
        return _Compiler().ref(registry().resolver(), BASE + name)
    except _Unsupported:
        return None


class _Compiler:
    def __init__(self) -> None:
        self._refs: dict[int, list[Check]] = {}  # id(resolved schema) -> its check, once compiled

    def ref(self, resolver, ref: str) -> Check:
        resolved = resolver.lookup(ref)
        key = id(resolved.contents)  # the registry keeps every schema alive, so ids stay unique
        cell = self._refs.get(key)
        if cell is None:  # compile each target once; a cycle refers to the cell filled below
            cell = self._refs[key] = []
            cell.append(self.schema(resolved.contents, resolved.resolver))
        if cell:
            return cell[0]
        return lambda x: cell[0](x)

    def schema(self, schema: object, resolver) -> Check:
        if schema is True:
            return lambda x: True
        if schema is False:
            return lambda x: False
        if not isinstance(schema, dict):
            raise _Unsupported(f"schema {schema!r}")
        checks: list[Check] = []
        for keyword, value in schema.items():
            if keyword in _ANNOTATIONS:
                continue
            make = getattr(self, "k_" + keyword.lstrip("$"), None)
            if make is None:
                raise _Unsupported(keyword)
            checks.append(make(value, resolver))
        if not checks:
            return lambda x: True
        return _all_of(checks)

    # One method per keyword: each returns a check of that keyword alone (draft 2019-09 rules).

    def k_ref(self, value, resolver) -> Check:
        return self.ref(resolver, value)

    def k_type(self, value, resolver) -> Check:
        names = [value] if isinstance(value, str) else value
        tests = [_TYPES[n] for n in names if n in _TYPES]
        if len(tests) != len(names) or not tests:
            raise _Unsupported(f"type {value!r}")
        if len(tests) == 1:
            return tests[0]
        return lambda x: any(t(x) for t in tests)

    def k_properties(self, value, resolver) -> Check:
        props = [(k, self.schema(v, resolver)) for k, v in value.items()]

        def check(x) -> bool:
            if isinstance(x, dict):
                for k, c in props:
                    if k in x and not c(x[k]):
                        return False
            return True

        return check

    def k_required(self, value, resolver) -> Check:
        names = frozenset(value)
        return lambda x: not isinstance(x, dict) or names <= x.keys()

    def k_allOf(self, value, resolver) -> Check:
        return _all_of([self.schema(v, resolver) for v in value])

    def k_anyOf(self, value, resolver) -> Check:
        checks = [self.schema(v, resolver) for v in value]

        def check(x) -> bool:
            for c in checks:
                if c(x):
                    return True
            return False

        return check

    def k_oneOf(self, value, resolver) -> Check:
        checks = [self.schema(v, resolver) for v in value]
        return lambda x: sum(1 for c in checks if c(x)) == 1

    def k_not(self, value, resolver) -> Check:
        check = self.schema(value, resolver)
        return lambda x: not check(x)

    def k_const(self, value, resolver) -> Check:
        return lambda x: _equal(x, value)

    def k_enum(self, value, resolver) -> Check:
        options = list(value)
        return lambda x: any(_equal(x, o) for o in options)

    def k_items(self, value, resolver) -> Check:
        if isinstance(value, list):
            raise _Unsupported("items as a list")
        check = self.schema(value, resolver)
        return lambda x: not isinstance(x, list) or all(check(i) for i in x)

    def k_contains(self, value, resolver) -> Check:
        check = self.schema(value, resolver)
        return lambda x: not isinstance(x, list) or any(check(i) for i in x)

    def k_minItems(self, value, resolver) -> Check:
        return lambda x: not isinstance(x, list) or len(x) >= value

    def k_maxItems(self, value, resolver) -> Check:
        return lambda x: not isinstance(x, list) or len(x) <= value

    def k_pattern(self, value, resolver) -> Check:
        pattern = re.compile(value)
        return lambda x: not isinstance(x, str) or pattern.search(x) is not None


def _all_of(checks: list[Check]) -> Check:
    if len(checks) == 1:
        return checks[0]

    def check(x) -> bool:
        for c in checks:
            if not c(x):
                return False
        return True

    return check


def _is_integer(x: object) -> bool:
    return (isinstance(x, int) and not isinstance(x, bool)) or (isinstance(x, float) and x.is_integer())


_TYPES: dict[str, Check] = {
    "object": lambda x: isinstance(x, dict),
    "array": lambda x: isinstance(x, list),
    "string": lambda x: isinstance(x, str),
    "boolean": lambda x: isinstance(x, bool),
    "null": lambda x: x is None,
    "number": lambda x: isinstance(x, Number) and not isinstance(x, bool),
    "integer": _is_integer,
}


def _equal(a: object, b: object) -> bool:
    """JSON equality as jsonschema's const/enum see it: true and 1 differ, 1 and 1.0 do not."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, dict) or isinstance(b, dict):
        return (isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys()
                and all(_equal(a[k], b[k]) for k in a))
    if isinstance(a, list) or isinstance(b, list):
        return isinstance(a, list) and isinstance(b, list) and len(a) == len(b) and all(map(_equal, a, b))
    return a == b
