-- Deliveries are retried: a transient failure waits for `next_attempt_at` (unix seconds)
-- in `retrying`, a delivery out of attempts is `dead` (dead-lettered, retried by hand), a
-- permanent failure is `failed`. The payload is kept until a delivery is done or ignored.
-- SQLite cannot change a CHECK constraint in place, so the table is rebuilt.
CREATE TABLE deliveries_new (
    id              TEXT PRIMARY KEY,            -- X-GitHub-Delivery
    event           TEXT NOT NULL,
    action          TEXT,
    repo            TEXT,                        -- lower(owner/name), when the payload names one
    status          TEXT NOT NULL CHECK (status IN ('pending', 'done', 'ignored', 'failed', 'retrying', 'dead')),
    verdict         TEXT NOT NULL DEFAULT '',
    payload         TEXT,                        -- kept until done or ignored
    received_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    processed_at    TEXT,
    attempts        INTEGER NOT NULL DEFAULT 0,  -- processing attempts made
    next_attempt_at INTEGER                      -- unix seconds; set while retrying
);
INSERT INTO deliveries_new (rowid, id, event, action, repo, status, verdict, payload, received_at, processed_at, attempts)
    SELECT rowid, id, event, action, repo, status, verdict, payload, received_at, processed_at,
           CASE WHEN status = 'pending' THEN 0 ELSE 1 END
    FROM deliveries;
DROP TABLE deliveries;
ALTER TABLE deliveries_new RENAME TO deliveries;
CREATE INDEX deliveries_by_repo ON deliveries (repo, received_at);
CREATE INDEX deliveries_pending ON deliveries (status) WHERE status = 'pending';
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'retrying';
