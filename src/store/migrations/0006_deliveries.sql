-- Webhook deliveries: recorded before the 202, processed after, kept as an audit log.
CREATE TABLE deliveries (
    id           TEXT PRIMARY KEY,            -- X-GitHub-Delivery
    event        TEXT NOT NULL,
    action       TEXT,
    repo         TEXT,                        -- lower(owner/name), when the payload names one
    status       TEXT NOT NULL CHECK (status IN ('pending', 'done', 'ignored', 'failed')),
    verdict      TEXT NOT NULL DEFAULT '',
    payload      TEXT,                        -- kept only until processed
    received_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    processed_at TEXT
);
CREATE INDEX deliveries_by_repo ON deliveries (repo, received_at);
CREATE INDEX deliveries_pending ON deliveries (status) WHERE status = 'pending';
