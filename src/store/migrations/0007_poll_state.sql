-- What the poller last saw per repo, so a restart repeats nothing.
CREATE TABLE poll_state (
    repo         TEXT PRIMARY KEY,            -- lower(owner/name)
    default_sha  TEXT,
    open_heads   TEXT NOT NULL DEFAULT '{}',  -- JSON: PR number -> head SHA
    cycles       INTEGER NOT NULL DEFAULT 0,
    changed_at   TEXT
);

-- Closed PRs the poller has handled (merged ones integrated, others recorded).
CREATE TABLE closed_seen (
    repo TEXT NOT NULL,
    pr   INTEGER NOT NULL,
    PRIMARY KEY (repo, pr)
);

-- GitHub's answers with their ETag / Last-Modified, so conditional requests stay free
-- after a restart.
CREATE TABLE http_cache (
    url           TEXT PRIMARY KEY,
    etag          TEXT,
    last_modified TEXT,
    next_page     TEXT,
    body          BLOB NOT NULL
);
