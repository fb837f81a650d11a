-- The last scan of each repo (JSON report), so listings and status need no network call.
CREATE TABLE scans (
    repo       TEXT PRIMARY KEY,          -- lower(owner/name)
    report     TEXT NOT NULL,
    scanned_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);

-- What happened to each repo and why (scans, decisions, role runs, deliveries).
CREATE TABLE events (
    id         INTEGER PRIMARY KEY,
    repo       TEXT NOT NULL,             -- lower(owner/name)
    kind       TEXT NOT NULL,
    summary    TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);
CREATE INDEX events_by_repo ON events (repo, id);
