"""Schema 8: each outgoing stream's sequence counter is kept in ``sync_stream_out``.

``sync_stream_out.floor_seq`` becomes the highest seq used on the stream: publishing takes the
next one there, instead of looking up the highest seq among the stream's outbox rows. The outbox
index on (space, stream, seq) then only has to cover messages that can be asked for again (not
retained ones): a burst of catalog entries on many topics no longer rewrites index pages all
over the store at every commit."""

from appliance.storage.migrate import execute_all

STATEMENTS = (
    """
    INSERT INTO sync_stream_out (space_id, stream, floor_seq)
    SELECT space_id, stream, MAX(seq) FROM sync_outbox WHERE seq > 0 GROUP BY space_id, stream
    ON CONFLICT (space_id, stream) DO UPDATE SET floor_seq = MAX(floor_seq, excluded.floor_seq);
    """,
    "DROP INDEX sync_outbox_stream;",
    "CREATE INDEX sync_outbox_stream ON sync_outbox (space_id, stream, seq) WHERE retained = 0;",
)


def migrate(conn) -> None:
    execute_all(conn, STATEMENTS)
