"""Schema 7: member grades, retired filings, demands kept by the operator.

* ``operator_admission.grade``: the grade the operator chose when admitting (NULL: the space's
  default grade); the member's current grade lives in its credential.
* ``operator_filing.retired`` / ``retire_reason``: the provider retired the filed agreement.
* ``operator_demand``: open data demands the operator publishes retained to ``operator/demands/<id>``
  (so members that join later see them) and clears on withdrawal or expiry."""

from appliance.storage.migrate import execute_all

STATEMENTS = (
    "ALTER TABLE operator_admission ADD COLUMN grade INTEGER;",
    "ALTER TABLE operator_filing ADD COLUMN retired TEXT;",
    "ALTER TABLE operator_filing ADD COLUMN retire_reason TEXT;",
    """
    CREATE TABLE operator_demand (
        id       TEXT PRIMARY KEY,         -- the demand's id (urn:demand:<uuid>)
        topic    TEXT NOT NULL UNIQUE,     -- operator/demands/<uuid>
        owner    TEXT NOT NULL,            -- the member that published it
        demand   TEXT NOT NULL,            -- the demand (JSON)
        status   TEXT NOT NULL CHECK (status IN ('open', 'withdrawn', 'expired')),
        expires  TEXT,
        updated  TEXT NOT NULL
    );
    """,
)


def migrate(conn) -> None:
    execute_all(conn, STATEMENTS)
