"""Schema 3: data products (versions, pinned resource versions = lineage, offers, listing per space)
and the local search index over resources and products.

Search: ``search_doc`` holds one row per searchable entry (clean text and the filter fields);
``search_fts`` is a contentless FTS5 index over it with the ``trigram`` tokenizer (substring
search that works for Chinese without a word list); ``search_vocab`` exposes its terms so one- and
two-character queries can be answered from the index too (see ``services/catalog/search.py``).
Every text goes into the index with a trailing space, so every occurrence of a two-character word
starts some trigram.

The index is kept up to date by triggers, so whoever writes ``resource``, ``resource_version``,
``product`` or ``product_resource`` (m0002's tables are written by the resources feature) keeps it
in sync without calling search code. Other features index their own entries under another
``scope`` through ``SearchIndex.index_entry``.
"""

from appliance.storage.migrate import execute_all

TABLES = (
    """
    CREATE TABLE product (
        id          TEXT PRIMARY KEY,                -- 'urn:dsnode:product:<uuid4>'
        version     INTEGER NOT NULL,                -- 1, then one more for every change
        status      TEXT NOT NULL CHECK (status IN ('draft', 'listed', 'updated', 'delisted')),
        title       TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        keywords    TEXT NOT NULL DEFAULT '[]',      -- JSON array of strings
        domain      TEXT NOT NULL DEFAULT '',
        created     TEXT NOT NULL,
        updated     TEXT NOT NULL
    );
    """,
    """
    -- What each version of a product was (the catalog entry a space saw, an agreement refers to).
    CREATE TABLE product_revision (
        product_id TEXT NOT NULL REFERENCES product(id),
        version    INTEGER NOT NULL,
        created    TEXT NOT NULL,
        snapshot   TEXT NOT NULL,                    -- JSON: description, resources, offers (ODRL JSON-LD)
        PRIMARY KEY (product_id, version)
    ) WITHOUT ROWID;
    """,
    """
    -- Lineage: product version -> the resource versions it was made from.
    CREATE TABLE product_resource (
        product_id      TEXT NOT NULL REFERENCES product(id),
        product_version INTEGER NOT NULL,
        resource_id     TEXT NOT NULL,               -- resource(id); no foreign key: lineage outlives resources
        version         INTEGER NOT NULL,            -- resource_version(version) pinned
        PRIMARY KEY (product_id, product_version, resource_id)
    ) WITHOUT ROWID;
    """,
    "CREATE INDEX product_resource_lineage ON product_resource (resource_id, version);",
    """
    CREATE TABLE product_offer (
        uid        TEXT PRIMARY KEY,                 -- the ODRL Offer's @id: 'urn:dsnode:offer:<uuid4>'
        product_id TEXT NOT NULL REFERENCES product(id),
        position   INTEGER NOT NULL,
        template   TEXT,                             -- offer template id, NULL for a hand-written policy
        params     TEXT NOT NULL DEFAULT '{}',       -- JSON: template parameters used
        policy     TEXT NOT NULL,                    -- ODRL 2.2 JSON-LD
        created    TEXT NOT NULL
    );
    """,
    "CREATE INDEX product_offer_product ON product_offer (product_id, position);",
    """
    CREATE TABLE product_listing (
        product_id   TEXT NOT NULL REFERENCES product(id),
        space_id     TEXT NOT NULL,
        status       TEXT NOT NULL CHECK (status IN ('requested', 'listed', 'rejected', 'delisted')),
        version      INTEGER NOT NULL,               -- product version last sent to the space
        listed_version INTEGER,                      -- version the space accepted and still shows, if any
        reason       TEXT NOT NULL DEFAULT '',
        notice_until TEXT,                           -- delisted: the entry stays visible until then
        updated      TEXT NOT NULL,
        PRIMARY KEY (product_id, space_id)
    ) WITHOUT ROWID;
    """,
    """
    CREATE TABLE search_doc (
        id          INTEGER PRIMARY KEY,
        scope       TEXT NOT NULL,                   -- 'local' = this node's catalog; others e.g. 'space:<id>'
        kind        TEXT NOT NULL,                   -- resource | product | dataset
        ref         TEXT NOT NULL,                   -- the entry's id
        type        TEXT NOT NULL DEFAULT '',        -- resource kind (file, table, ...) or 'product'
        domain      TEXT NOT NULL DEFAULT '',
        category    TEXT,                            -- general | important | core
        sensitivity INTEGER,                         -- 1..4
        status      TEXT NOT NULL DEFAULT '',
        updated     TEXT NOT NULL DEFAULT '',
        title       TEXT NOT NULL,
        description TEXT NOT NULL,
        keywords    TEXT NOT NULL,                   -- keywords and domain, space-separated
        columns     TEXT NOT NULL,                   -- column names, space-separated
        UNIQUE (scope, ref)
    );
    """,
    "CREATE INDEX search_doc_updated ON search_doc (scope, updated);",
    # Covering index for the search's filter probes (id first: looked up by FTS rowid; narrow, so cached).
    "CREATE INDEX search_doc_filter ON search_doc (id, scope, kind, type, domain, category, sensitivity);",
    """
    CREATE VIRTUAL TABLE search_fts USING fts5 (
        title, description, keywords, columns,
        content = '', contentless_delete = 1, tokenize = 'trigram'
    );
    """,
    "CREATE VIRTUAL TABLE search_vocab USING fts5vocab (search_fts, 'row');",
    """
    CREATE TRIGGER search_doc_ai AFTER INSERT ON search_doc BEGIN
        INSERT INTO search_fts (rowid, title, description, keywords, columns)
        VALUES (new.id, new.title || ' ', new.description || ' ', new.keywords || ' ', new.columns || ' ');
    END;
    """,
    """
    CREATE TRIGGER search_doc_ad AFTER DELETE ON search_doc BEGIN
        DELETE FROM search_fts WHERE rowid = old.id;
    END;
    """,
    """
    CREATE TRIGGER search_doc_au AFTER UPDATE ON search_doc BEGIN
        DELETE FROM search_fts WHERE rowid = old.id;
        INSERT INTO search_fts (rowid, title, description, keywords, columns)
        VALUES (new.id, new.title || ' ', new.description || ' ', new.keywords || ' ', new.columns || ' ');
    END;
    """,
)


def _json_words(expr: str) -> str:
    """Space-separated strings of a JSON array (invalid JSON -> nothing, never an error)."""
    return (f"COALESCE((SELECT group_concat(j.value, ' ') FROM json_each(CASE WHEN json_valid({expr}) "
            f"THEN {expr} ELSE '[]' END) j WHERE j.type IN ('text', 'integer', 'real')), '')")


def _column_name(json_value: str, json_type: str) -> str:
    return f"CASE {json_type} WHEN 'object' THEN json_extract({json_value}, '$.name') WHEN 'text' THEN {json_value} END"


_COLUMNS_JSON = "CASE WHEN json_valid(v.columns) THEN v.columns ELSE '[]' END"


def refresh_resources(ids: str) -> str:
    """Statements that rebuild the search rows of the resources whose ids ``ids`` (SQL) yields."""
    columns = (f"COALESCE((SELECT group_concat({_column_name('c.value', 'c.type')}, ' ') "
               f"FROM resource_version v, json_each({_COLUMNS_JSON}) c "
               f"WHERE v.resource_id = r.id AND v.version = r.current_version), '')")
    return f"""
        DELETE FROM search_doc WHERE scope = 'local' AND kind = 'resource' AND ref IN ({ids});
        INSERT INTO search_doc (scope, kind, ref, type, domain, category, sensitivity, status, updated,
                                title, description, keywords, columns)
        SELECT 'local', 'resource', r.id, r.kind, r.domain, r.category, r.sensitivity, '', r.updated,
               r.title, r.description, trim({_json_words('r.keywords')} || ' ' || r.domain), {columns}
        FROM resource r WHERE r.id IN ({ids}) AND r.removed IS NULL;
    """


def refresh_products(ids: str) -> str:
    """Statements that rebuild the search rows of the products whose ids ``ids`` (SQL) yields.

    A product's grade is the highest of its pinned resources'; its columns are theirs.
    """
    pins = "FROM product_resource pr JOIN resource r ON r.id = pr.resource_id " \
           "WHERE pr.product_id = p.id AND pr.product_version = p.version"
    rank = "CASE r.category WHEN 'core' THEN 3 WHEN 'important' THEN 2 ELSE 1 END"
    category = f"(SELECT CASE MAX({rank}) WHEN 3 THEN 'core' WHEN 2 THEN 'important' WHEN 1 THEN 'general' END {pins})"
    sensitivity = f"(SELECT MAX(r.sensitivity) {pins})"
    columns = (f"COALESCE((SELECT group_concat(name, ' ') FROM "
               f"(SELECT DISTINCT {_column_name('c.value', 'c.type')} AS name "
               f"FROM product_resource pr JOIN resource_version v ON v.resource_id = pr.resource_id "
               f"AND v.version = pr.version, json_each({_COLUMNS_JSON}) c "
               f"WHERE pr.product_id = p.id AND pr.product_version = p.version)), '')")
    return f"""
        DELETE FROM search_doc WHERE scope = 'local' AND kind = 'product' AND ref IN ({ids});
        INSERT INTO search_doc (scope, kind, ref, type, domain, category, sensitivity, status, updated,
                                title, description, keywords, columns)
        SELECT 'local', 'product', p.id, 'product', p.domain, {category}, {sensitivity}, p.status, p.updated,
               p.title, p.description, trim({_json_words('p.keywords')} || ' ' || p.domain), {columns}
        FROM product p WHERE p.id IN ({ids});
    """


_PRODUCTS_OF = "SELECT product_id FROM product_resource WHERE resource_id = {}"
_RESOURCE_FIELDS = ("kind, title, description, keywords, domain, category, sensitivity, current_version, "
                    "removed, updated")

TRIGGERS = (
    f"""CREATE TRIGGER search_resource_ai AFTER INSERT ON resource BEGIN
        {refresh_resources('new.id')} END;""",
    f"""CREATE TRIGGER search_resource_au AFTER UPDATE OF {_RESOURCE_FIELDS} ON resource BEGIN
        {refresh_resources('old.id, new.id')}
        {refresh_products(_PRODUCTS_OF.format('new.id'))} END;""",
    """CREATE TRIGGER search_resource_ad AFTER DELETE ON resource BEGIN
        DELETE FROM search_doc WHERE scope = 'local' AND kind = 'resource' AND ref = old.id; END;""",
    f"""CREATE TRIGGER search_version_ai AFTER INSERT ON resource_version BEGIN
        {refresh_resources('new.resource_id')} END;""",
    f"""CREATE TRIGGER search_version_au AFTER UPDATE OF columns ON resource_version BEGIN
        {refresh_resources('new.resource_id')}
        {refresh_products(_PRODUCTS_OF.format('new.resource_id'))} END;""",
    f"""CREATE TRIGGER search_version_ad AFTER DELETE ON resource_version BEGIN
        {refresh_resources('old.resource_id')} END;""",
    f"""CREATE TRIGGER search_product_ai AFTER INSERT ON product BEGIN
        {refresh_products('new.id')} END;""",
    f"""CREATE TRIGGER search_product_au AFTER UPDATE ON product BEGIN
        {refresh_products('old.id, new.id')} END;""",
    """CREATE TRIGGER search_product_ad AFTER DELETE ON product BEGIN
        DELETE FROM search_doc WHERE scope = 'local' AND kind = 'product' AND ref = old.id; END;""",
    f"""CREATE TRIGGER search_pin_ai AFTER INSERT ON product_resource BEGIN
        {refresh_products('new.product_id')} END;""",
    f"""CREATE TRIGGER search_pin_ad AFTER DELETE ON product_resource BEGIN
        {refresh_products('old.product_id')} END;""",
)


def migrate(conn) -> None:
    execute_all(conn, TABLES + TRIGGERS)
    # Index what m0002's tables already hold (a store upgraded with resources in it).
    execute_all(conn, [s for s in refresh_resources("SELECT id FROM resource").split(";") if s.strip()])
