"""Text laid out in columns on a terminal, Chinese included.

A CJK character (East Asian Wide or Fullwidth) takes two terminal cells, a combining mark none.
"""

from __future__ import annotations

import unicodedata


def display_width(text: str) -> int:
    """How many terminal cells ``text`` takes."""
    width = 0
    for ch in text:
        if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
            continue
        width += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return width


def pad(text: str, width: int) -> str:
    """``text`` followed by spaces up to ``width`` cells."""
    return text + " " * max(0, width - display_width(text))


def print_pairs(rows: list[tuple[str, str]]) -> None:
    """Label and value rows, the values aligned after the widest label."""
    width = max((display_width(k) for k, _ in rows), default=0)
    for key, value in rows:
        print(f"{pad(key, width)}  {value}")


def print_columns(rows: list[list[str]]) -> None:
    """Rows of cells, each column as wide as its widest cell."""
    if not rows:
        return
    widths = [max(display_width(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(pad(cell, w) for cell, w in zip(r, widths, strict=False)).rstrip())
