-- Head SHAs reviewed, so each SHA gets exactly one review whatever triggers it.
CREATE TABLE reviewed_shas (
    repo       TEXT NOT NULL,                 -- lower(owner/name)
    pr         INTEGER NOT NULL,
    sha        TEXT NOT NULL,
    review_id  INTEGER NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    PRIMARY KEY (repo, pr, sha)
);

-- Merged task PRs already handed to the Integrator (once per merged PR).
CREATE TABLE integrations (
    repo           TEXT NOT NULL,
    pr             INTEGER NOT NULL,
    task           TEXT NOT NULL,
    integration_pr INTEGER NOT NULL,
    created_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    PRIMARY KEY (repo, pr)
);

-- The local forge: PRs, comments and reviews of repos whose origin is a git repo on disk.
CREATE TABLE local_pulls (
    repo            TEXT NOT NULL,
    number          INTEGER NOT NULL,
    title           TEXT NOT NULL,
    body            TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('open', 'closed')),
    head_ref        TEXT NOT NULL,
    base_ref        TEXT NOT NULL,
    closed_head_sha TEXT,
    closed_base_sha TEXT,
    merged_at       TEXT,
    merge_sha       TEXT,
    labels          TEXT NOT NULL DEFAULT '[]',
    author          TEXT NOT NULL,
    created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    updated_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    PRIMARY KEY (repo, number)
);

CREATE TABLE local_comments (
    id         INTEGER PRIMARY KEY,
    repo       TEXT NOT NULL,
    number     INTEGER NOT NULL,
    body       TEXT NOT NULL,
    author     TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);

CREATE TABLE local_reviews (
    id        INTEGER PRIMARY KEY,
    repo      TEXT NOT NULL,
    number    INTEGER NOT NULL,
    commit_id TEXT NOT NULL,
    body      TEXT NOT NULL,
    state     TEXT NOT NULL,
    author    TEXT NOT NULL
);
