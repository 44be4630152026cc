"""Hypothesis strategies for what a peer can send: JSON values of any shape, and JSON texts.

``json_values()`` gives Python values as ``json.loads`` could return them from hostile text (and
worse: integers of any size, NaN and infinities, lone surrogates, deep nesting), for parsers that
take already-parsed JSON. ``json_texts()`` gives UTF-8 bytes, including numbers no Python value
can print (``1`` followed by 5,000 zeros) and nesting deeper than the interpreter recurses.
``mutations(doc)`` changes one field of a valid document anywhere inside it.
"""

from __future__ import annotations

import json

from hypothesis import strategies as st

# Lone surrogates (category Cs) included: json.loads turns "\ud800" into such a string.
text = st.text(st.characters(blacklist_categories=()), max_size=20)
long_text = st.sampled_from(["did:key:z6Mk" + "1" * 5000, "a" * 70000, "\ud800" * 300, "P" + "9" * 5000 + "D"])
# (made by map: hypothesis would repr a list holding them, and str() refuses over 4,300 digits)
huge_int = st.sampled_from([(1, 2, 53), (-1, 2, 53), (1, 2, 64), (1, 10, 4301), (-1, 10, 5000)]).map(
    lambda t: t[0] * t[1] ** t[2])
integers = st.integers() | huge_int | st.integers(-(2**53) + 1, 2**53 - 1)
floats = st.floats() | st.sampled_from([float("inf"), float("-inf"), float("nan"), 1e308, -0.0])
scalars = st.none() | st.booleans() | integers | floats | text | long_text


def deep(levels: int, leaf: object = 1) -> object:
    """``leaf`` inside ``levels`` nested lists and objects."""
    value = leaf
    for i in range(levels):
        value = [value] if i % 2 else {"a": value}
    return value


def json_values(max_leaves: int = 20) -> st.SearchStrategy:
    """Any JSON-like value: dicts with string keys, lists, and every scalar above."""
    tree = st.recursive(
        scalars,
        lambda children: st.lists(children, max_size=4) | st.dictionaries(text, children, max_size=4),
        max_leaves=max_leaves,
    )
    return tree | st.integers(30, 3000).map(deep)


class Raw:
    """A piece of JSON text put in as it is (a number no Python int can print, ``NaN`` ...)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"Raw({self.text[:40]!r})"


raw_numbers = st.sampled_from(["1" * 4301, "-" + "9" * 6000, "1e400", "-1e400", "1E999999", "9007199254740992",
                               "NaN", "Infinity", "-Infinity", "0.1", "123456789012345678901234567890"]).map(Raw)


def dump(value: object) -> str:
    """JSON text of a value made by :func:`json_values` (or holding :class:`Raw` pieces)."""
    stack: list[object] = [value]
    out: list[str] = []
    while stack:
        v = stack.pop()
        if isinstance(v, Raw):
            out.append(v.text)
        elif isinstance(v, dict):
            parts: list[object] = [Raw("{")]
            for i, (k, item) in enumerate(v.items()):
                parts += [Raw(("," if i else "") + json.dumps(k) + ":"), item]
            stack.extend(reversed([*parts, Raw("}")]))
        elif isinstance(v, list):
            parts = [Raw("[")]
            for i, item in enumerate(v):
                parts += [Raw(",")] if i else []
                parts.append(item)
            stack.extend(reversed([*parts, Raw("]")]))
        elif isinstance(v, int) and not isinstance(v, bool) and v.bit_length() > 4000:
            out.append(("-" if v < 0 else "") + "1" + "0" * 4400)
        else:
            out.append(json.dumps(v))
    return "".join(out)


def json_texts() -> st.SearchStrategy:
    """UTF-8 JSON texts (some not valid JSON) of any value, with raw numbers and deep nesting."""
    with_raw = st.recursive(
        scalars | raw_numbers,
        lambda children: st.lists(children, max_size=4) | st.dictionaries(text, children, max_size=4),
        max_leaves=20,
    )
    texts = (with_raw | st.integers(30, 5000).map(deep)).map(dump)
    return texts.map(lambda t: t.encode("utf-8", "surrogatepass")) | st.binary(max_size=64)


def paths(doc: object) -> list[tuple]:
    """Every path (a tuple of keys and indexes) to a value inside ``doc``, the root included."""
    found: list[tuple] = []
    stack: list[tuple[tuple, object]] = [((), doc)]
    while stack:
        path, value = stack.pop()
        found.append(path)
        if isinstance(value, dict):
            stack.extend((path + (k,), v) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((path + (i,), v) for i, v in enumerate(value))
    return sorted(found, key=repr)


def replaced(doc: object, path: tuple, new: object) -> object:
    """A copy of ``doc`` with the value at ``path`` replaced by ``new``."""
    if not path:
        return new
    head, rest = path[0], path[1:]
    copy = dict(doc) if isinstance(doc, dict) else list(doc)
    copy[head] = replaced(doc[head], rest, new)
    return copy


def mutations(doc: object, values: st.SearchStrategy | None = None) -> st.SearchStrategy:
    """``doc`` with one value anywhere inside it replaced by another JSON value of any type
    (or, for an object, a key added or removed)."""
    values = values if values is not None else json_values(8)
    where = st.sampled_from(paths(doc))

    @st.composite
    def mutate(draw):
        path = draw(where)
        target = doc
        for step in path:
            target = target[step]
        if isinstance(target, dict) and target and draw(st.booleans()):
            key = draw(st.sampled_from(sorted(target)))
            smaller = {k: v for k, v in target.items() if k != key}
            return replaced(doc, path, smaller if draw(st.booleans()) else {**target, draw(text): draw(values)})
        return replaced(doc, path, draw(values))

    return mutate()
