"""Local search over the catalog: titles, descriptions, keywords and column names, Chinese included.

The index (schema 3) is SQLite FTS5 with the ``trigram`` tokenizer, so a query matches any
substring of three or more characters: ``订单明细`` finds ``采购订单明细表`` without a Chinese word
list. Shorter words, which Chinese users type all the time (``订单``, ``客户``), cannot be a trigram
query; they are answered from the same index through its vocabulary: every indexed trigram that
starts with the word (each text is indexed with a trailing space, so every occurrence of the word
starts one) becomes an OR group. Only when that group would be huge (a single common character)
does the search fall back to a ``LIKE`` scan. Words are ANDed. Results are ranked by the fields
each word occurs in (title 10, keywords 5, column names 3, description 2; newest first on ties)
and carry a snippet. The index hands matches over newest first, filters are checked on a narrow
covering index, and at most ``rank_window`` matches are scored, so a very broad query ranks its
1,000 most recently changed matches and latency stays bounded at 100,000 entries; any query with
fewer matches is ranked completely.

The index is filled by triggers for this node's resources and products (scope ``local``). Other
features put their own entries in with :meth:`SearchIndex.index_entry` under another scope (the
space catalog cache uses ``space:<id>``) and search them with ``scope=``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from appliance.storage.database import Database

log = logging.getLogger(__name__)

LOCAL = "local"
CATEGORIES = ("general", "important", "core")
ENTRY_KINDS = ("resource", "product", "dataset")
MAX_TERMS = 400  # a short word with more distinct trigrams than this is scanned with LIKE instead
RANK_WINDOW = 1000  # how many of the newest matches are scored (all of them, unless a query is very broad)
FIELDS = ("title", "keywords", "columns", "description")
_DOC = "d.id, d.kind, d.ref, d.scope, d.type, d.title, d.description, d.keywords, d.columns, d.domain, " \
       "d.category, d.sensitivity, d.status, d.updated"


@dataclass(frozen=True)
class SearchHit:
    kind: str  # resource | product | dataset
    ref: str  # the resource, product or dataset id
    title: str
    type: str = ""  # resource kind (file, table, ...) or 'product'
    domain: str = ""
    category: str | None = None
    sensitivity: int | None = None
    status: str = ""
    updated: str = ""
    scope: str = LOCAL
    field: str = ""  # where the words were found: title, keywords, columns or description
    snippet: str = ""  # that field's text around the match, the match in [brackets]
    score: float = 0.0  # higher is better

    def to_json(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Filters:
    domain: str | None = None
    category: str | None = None
    sensitivity: int | None = None
    type: str | None = None
    kind: str | None = None

    @classmethod
    def of(cls, *, domain: str | None = None, grade: str | int | None = None, kind: str | None = None) -> Filters:
        """``grade``: a GB/T 43697 category (general, important, core) or a sensitivity level 1..4;
        ``kind``: resource, product or dataset, or a resource kind (file, folder, table, ...)."""
        category = sensitivity = None
        if grade is not None and str(grade) != "":
            if str(grade) in CATEGORIES:
                category = str(grade)
            elif str(grade) in ("1", "2", "3", "4"):
                sensitivity = int(grade)
            else:
                raise ValueError(f"grade must be one of {CATEGORIES} or 1..4, not {grade!r}")
        entry_kind = kind if kind in ENTRY_KINDS else None
        rtype = kind if kind and kind not in ENTRY_KINDS else None
        return cls(domain or None, category, sensitivity, rtype, entry_kind)

    def sql(self) -> tuple[str, list]:
        where, args = [], []
        for column, value in (("domain", self.domain), ("category", self.category),
                              ("sensitivity", self.sensitivity), ("type", self.type), ("kind", self.kind)):
            if value is not None:
                where.append(f"d.{column} = ?")
                args.append(value)
        return "".join(f" AND {w}" for w in where), args


def words_of(text: str) -> list[str]:
    """The query's words, lower-cased, each once, in order."""
    return list(dict.fromkeys(w.lower() for w in text.split() if w.strip()))


def _quote(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


def _like(word: str) -> str:
    return "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class SearchIndex:
    """Searching the index, and the API other features use to put their entries into it."""

    def __init__(self, db: Database, *, rank_window: int = RANK_WINDOW) -> None:
        self._db = db
        self._rank_window = rank_window

    # --- searching ----------------------------------------------------------------------------

    def query(self, text: str = "", *, domain: str | None = None, grade: str | int | None = None,
              kind: str | None = None, scope: str = LOCAL, limit: int = 20) -> list[SearchHit]:
        """The best ``limit`` entries of ``scope`` containing every word of ``text`` (all, newest first,
        when ``text`` is empty), filtered by domain, grade (category or sensitivity) and kind."""
        filters = Filters.of(domain=domain, grade=grade, kind=kind)
        words = words_of(text)
        return self._db.read(lambda conn: query_in(conn, words, filters, scope, limit, self._rank_window))

    # --- the index API for other features -----------------------------------------------------

    @staticmethod
    def index_entry(conn, *, scope: str, kind: str, ref: str, title: str, description: str = "",
                    keywords: Iterable[str] = (), columns: Iterable[str] = (), domain: str = "", type: str = "",
                    category: str | None = None, sensitivity: int | None = None, status: str = "",
                    updated: str = "") -> None:
        """Add or replace entry ``ref`` of ``scope`` inside the caller's write transaction.

        Scope ``local`` belongs to the triggers on this node's own catalog and is refused here.
        """
        if scope == LOCAL:
            raise ValueError("scope 'local' is maintained by the catalog's triggers")
        conn.execute("DELETE FROM search_doc WHERE scope = ? AND ref = ?", (scope, ref))
        conn.execute(
            "INSERT INTO search_doc (scope, kind, ref, type, domain, category, sensitivity, status, updated, "
            "title, description, keywords, columns) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (scope, kind, ref, type, domain, category, sensitivity, status, updated, title, description,
             " ".join([*keywords, domain]).strip(), " ".join(columns)),
        )

    @staticmethod
    def remove_entry(conn, scope: str, ref: str) -> bool:
        if scope == LOCAL:
            raise ValueError("scope 'local' is maintained by the catalog's triggers")
        return conn.execute("DELETE FROM search_doc WHERE scope = ? AND ref = ?", (scope, ref)).rowcount == 1

    @staticmethod
    def clear_scope(conn, scope: str) -> int:
        if scope == LOCAL:
            raise ValueError("scope 'local' is maintained by the catalog's triggers")
        return conn.execute("DELETE FROM search_doc WHERE scope = ?", (scope,)).rowcount

    def count(self, scope: str = LOCAL) -> int:
        return self._db.read(lambda c: c.execute("SELECT count(*) FROM search_doc WHERE scope = ?",
                                                 (scope,)).fetchone()[0])


def query_in(conn, words: list[str], filters: Filters, scope: str, limit: int,
             rank_window: int = RANK_WINDOW) -> list[SearchHit]:
    """The search of :meth:`SearchIndex.query` on connection ``conn`` (read or write), for features that
    search their own scope inside a transaction they already hold."""
    groups, scanned = [], []
    for word in words:
        if len(word) >= 3:
            groups.append(_quote(word))
            continue
        terms = [t for (t,) in conn.execute(
            "SELECT term FROM search_vocab WHERE term >= ? AND term < ? LIMIT ?",
            (word, word + "\U0010ffff", MAX_TERMS + 1))]
        if not terms and len(word) >= 2:
            return []  # every occurrence of a two-character word starts a trigram: none, so no match
        if not terms or len(terms) > MAX_TERMS:  # a single character may end a text, where no trigram starts
            scanned.append(word)
        else:
            groups.append("(" + " OR ".join(_quote(t) for t in terms) + ")")
    where, args = filters.sql()
    where += " AND d.scope = ?"
    args.append(scope)
    for word in scanned:
        where += " AND (" + " OR ".join(f"d.{f} LIKE ? ESCAPE '\\'" for f in FIELDS) + ")"
        args += [_like(word)] * len(FIELDS)
    if groups:
        # Newest matches first, filtered on the narrow covering index, until ``rank_window`` are found;
        # those are scored by where the words occur and the best ``limit`` returned.
        score, score_args = _score(words)
        sql = (f"SELECT {_DOC}, {score} AS score FROM (SELECT f.rowid AS id FROM search_fts f "
               f"CROSS JOIN search_doc d INDEXED BY search_doc_filter ON d.id = f.rowid "
               f"WHERE search_fts MATCH ?{where} ORDER BY f.rowid DESC LIMIT ?) w "
               f"CROSS JOIN search_doc d ON d.id = w.id ORDER BY score DESC, d.id DESC LIMIT ?")
        rows = conn.execute(sql, [*score_args, " AND ".join(groups), *args, rank_window, limit]).fetchall()
    else:
        sql = f"SELECT {_DOC}, 0.0 FROM search_doc d WHERE 1{where} ORDER BY d.updated DESC, d.id DESC LIMIT ?"
        rows = conn.execute(sql, [*args, limit]).fetchall()
    return [_hit(row, words) for row in rows]


WEIGHTS = (("title", 10), ("keywords", 5), ("columns", 3), ("description", 2))


def _score(words: list[str]) -> tuple[str, list[str]]:
    """SQL scoring a row by the fields each word occurs in (title 10, keywords 5, columns 3, description 2).

    Not BM25: FTS5's bm25() counts every match of each phrase for its IDF, which costs as much as
    the whole result set on a broad query; field weights on short catalog texts rank as well here.
    """
    terms, args = [], []
    for word in words:
        for field, weight in WEIGHTS:
            terms.append(f"{weight} * (instr(lower(d.{field}), ?) > 0)")
            args.append(word)
    return "(" + " + ".join(terms or ["0"]) + ")", args


def _hit(row, words: list[str]) -> SearchHit:
    (_, kind, ref, scope, rtype, title, description, keywords, columns, domain, category, sensitivity, status,
     updated, score) = row
    texts = {"title": title, "keywords": keywords, "columns": columns, "description": description}
    field, snippet = "", ""
    for name in FIELDS:
        found = snippet_of(texts[name], words)
        if found:
            field, snippet = name, found
            break
    return SearchHit(kind, ref, title, rtype, domain, category, sensitivity, status, updated, scope, field, snippet,
                     round(score, 4))


def snippet_of(text: str, words: list[str], width: int = 60, marks: tuple[str, str] = ("[", "]")) -> str:
    """``text`` around the first of ``words`` in it, each occurrence of a word in ``marks``; '' if none."""
    lower = text.lower()
    spots = sorted((i, len(w)) for w in words for i in _find_all(lower, w))
    if not spots:
        return ""
    start = max(0, spots[0][0] - width // 3)
    end = min(len(text), start + width)
    out, pos = [], start
    for i, n in spots:
        if i < pos or i + n > end:
            continue
        out += [text[pos:i], marks[0], text[i:i + n], marks[1]]
        pos = i + n
    out.append(text[pos:end])
    return ("…" if start else "") + "".join(out) + ("…" if end < len(text) else "")


def _find_all(text: str, word: str):
    i = text.find(word)
    while i >= 0:
        yield i
        i = text.find(word, i + len(word))

