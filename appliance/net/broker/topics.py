"""MQTT topic names and filters: validation, matching, and whether one filter covers another."""

from __future__ import annotations

from functools import lru_cache

MAX_TOPIC_BYTES = 65535


def valid_topic(topic: str) -> bool:
    """A topic name a client may publish to: not empty, no wildcards, no NUL."""
    return (bool(topic) and "+" not in topic and "#" not in topic and "\0" not in topic
            and len(topic.encode("utf-8")) <= MAX_TOPIC_BYTES)


def valid_filter(topic_filter: str) -> bool:
    """A subscription filter: ``+`` only as a whole level, ``#`` only as the whole last level."""
    if not topic_filter or "\0" in topic_filter or len(topic_filter.encode("utf-8")) > MAX_TOPIC_BYTES:
        return False
    levels = topic_filter.split("/")
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != len(levels) - 1):
            return False
        if "+" in level and level != "+":
            return False
    return True


@lru_cache(maxsize=16384)
def _levels(name: str) -> tuple[str, ...]:
    """``name`` split at "/" (remembered: the same filters and topics are matched over and over)."""
    return tuple(name.split("/"))


def matches(topic_filter: str, topic: str) -> bool:
    """Does ``topic_filter`` match the topic name ``topic``? (A filter starting with a wildcard
    does not match ``$`` topics.)"""
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False
    f, t = _levels(topic_filter), _levels(topic)
    for i, level in enumerate(f):
        if level == "#":
            return True  # also matches the parent level: "a/#" matches "a"
        if i >= len(t) or (level != "+" and level != t[i]):
            return False
    return len(f) == len(t)


def covers(pattern: str, topic_filter: str) -> bool:
    """Is every topic ``topic_filter`` matches also matched by ``pattern``? (Used for subscribe
    rules: a client may subscribe to a filter only if a rule's pattern covers it.)"""
    if topic_filter.startswith("$") and pattern[:1] in ("+", "#"):
        return False
    p, f = pattern.split("/"), topic_filter.split("/")
    for i, level in enumerate(p):
        if level == "#":
            return True
        if i >= len(f) or f[i] == "#":
            return False
        if level != "+" and (f[i] == "+" or f[i] != level):
            return False
    return len(p) == len(f)


class _Level:
    __slots__ = ("children", "subs")

    def __init__(self) -> None:
        self.children: dict[str, _Level] = {}
        self.subs: dict = {}  # key -> value, for the filters that end at this level


class FilterIndex:
    """Subscriptions by topic filter, a tree of levels: finding the ones that match a topic costs
    the topic's levels times the wildcards on the way, not the number of subscriptions."""

    def __init__(self) -> None:
        self._root = _Level()
        self.version = 0  # changes with every add and remove (for caches of what matches)

    def add(self, topic_filter: str, key, value) -> None:
        self.version += 1
        level = self._root
        for part in topic_filter.split("/"):
            level = level.children.setdefault(part, _Level())
        level.subs[key] = value

    def remove(self, topic_filter: str, key) -> None:
        self.version += 1
        path, level = [], self._root
        for part in topic_filter.split("/"):
            child = level.children.get(part)
            if child is None:
                return
            path.append((level, part))
            level = child
        level.subs.pop(key, None)
        for parent, part in reversed(path):  # prune the levels left empty
            child = parent.children[part]
            if child.subs or child.children:
                break
            del parent.children[part]

    def match(self, topic: str):
        """``(key, value)`` of every filter that matches ``topic`` (a key once per filter it holds)."""
        parts = topic.split("/")
        dollar = topic.startswith("$")
        stack = [(self._root, 0)]
        while stack:
            level, i = stack.pop()
            wild = not (dollar and i == 0)  # a filter starting with a wildcard does not match $ topics
            if wild and (rest := level.children.get("#")) is not None:
                yield from rest.subs.items()  # also the parent level: "a/#" matches "a"
            if i == len(parts):
                yield from level.subs.items()
                continue
            if (exact := level.children.get(parts[i])) is not None:
                stack.append((exact, i + 1))
            if wild and (plus := level.children.get("+")) is not None:
                stack.append((plus, i + 1))
