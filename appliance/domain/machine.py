"""The shape every protocol state machine has: a ``Table`` of ``(state, event) -> (next state, actions)``.

A table is the whole machine: a pair that is not in it is not allowed, and ``Table.step`` raises the
error its owner gave it, naming both. ``step`` is pure: it changes nothing and looks nothing up
but the table; the service that drives the machine stores the new state and performs the actions
(what they mean is up to it: a message to send, a connection to open). The tables: the sync link
(``domain/sync.py``), contract negotiation (``domain/negotiation.py``), a product and its listing
in a space (``domain/product.py``) and the operator's review of a listing
(``domain/listing_review.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import Generic, TypeVar

S = TypeVar("S")
E = TypeVar("E")
A = TypeVar("A")


class Table(Mapping[tuple[S, E], tuple[S, tuple[A, ...]]], Generic[S, E, A]):
    """The allowed moves of one machine, read-only.

    ``refuse(state, event, **context)`` builds the error for a move that is not allowed; ``context``
    is whatever else the error names (a product id, a request number), passed through ``step``.
    """

    def __init__(self, rows: Mapping[tuple[S, E], tuple[S, tuple[A, ...]]],
                 refuse: Callable[..., Exception]) -> None:
        self._rows = MappingProxyType(dict(rows))
        self._refuse = refuse

    def step(self, state: S, event: E, **context: object) -> tuple[S, tuple[A, ...]]:
        """The next state and the actions of ``event`` in ``state``; the table's error if not allowed."""
        try:
            return self._rows[(state, event)]
        except KeyError:
            raise self._refuse(state, event, **context) from None

    def refuse(self, state: S, event: E, **context: object) -> Exception:
        """The error ``step`` raises for this pair (for a guard outside the table, e.g. who sent it)."""
        return self._refuse(state, event, **context)

    def allows(self, state: S, event: E) -> bool:
        return (state, event) in self._rows

    def events(self, state: S) -> frozenset[E]:
        """The events ``state`` accepts."""
        return frozenset(event for (source, event) in self._rows if source == state)

    def sources(self, event: E) -> frozenset[S]:
        """The states that accept ``event``."""
        return frozenset(source for (source, e) in self._rows if e == event)

    def __getitem__(self, key: tuple[S, E]) -> tuple[S, tuple[A, ...]]:
        return self._rows[key]

    def __iter__(self) -> Iterator[tuple[S, E]]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)
