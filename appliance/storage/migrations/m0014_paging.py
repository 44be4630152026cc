"""Schema 14: the desktop app's lists page through large registers, and rule numbers are never reused.

``resource_newest``: the Resources page reads "the 100 resources after this one, newest first"
(keyset paging on ``created, id``); with 10,000 resources a page sorted the whole table. The index
covers the live resources only, as the page does.

``contract_rule`` becomes AUTOINCREMENT: a rule's number names it in the evidence log
(``rule:3`` added, removed), so a removed rule's number must not return for the next rule added.
The rules keep their numbers; the sequence starts after the highest one.
"""

from appliance.storage.migrate import execute_all

STATEMENTS = (
    "CREATE INDEX resource_newest ON resource (created DESC, id DESC) WHERE removed IS NULL;",
    """
    CREATE TABLE contract_rule_new (
        id    INTEGER PRIMARY KEY AUTOINCREMENT,
        rule  TEXT NOT NULL                    -- auto-approval rule as data (JSON)
    );
    """,
    "INSERT INTO contract_rule_new (id, rule) SELECT id, rule FROM contract_rule;",
    "DROP TABLE contract_rule;",
    "ALTER TABLE contract_rule_new RENAME TO contract_rule;",
)


def migrate(conn) -> None:
    execute_all(conn, STATEMENTS)
