"""MQTT topic names and filters: validation, matching, and whether one filter covers another."""

from __future__ import annotations

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


def matches(topic_filter: str, topic: str) -> bool:
    """Does ``topic_filter`` match the topic name ``topic``? (A filter starting with a wildcard
    does not match ``$`` topics.)"""
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False
    f, t = topic_filter.split("/"), topic.split("/")
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
