-- Runs: every piece of role work, durable, claimed with a lease (see engine/).
CREATE TABLE runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    repo TEXT NOT NULL,                 -- lower-case owner/name
    role TEXT NOT NULL,                 -- taskmaster | developer | reviewer | integrator
    task TEXT,
    pr INTEGER,
    trigger TEXT NOT NULL,              -- webhook | poll | api | cli | schedule | retry
    state TEXT NOT NULL,                -- queued | paused | running | succeeded | blocked | failed | cancelled
    attempts INTEGER NOT NULL DEFAULT 0,
    dedupe TEXT NOT NULL,               -- the same step for the same repo/task/PR is one active run
    summary TEXT NOT NULL DEFAULT '',
    outcome TEXT,                       -- JSON
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until INTEGER,                -- unix seconds
    progress_at INTEGER,                -- unix seconds of the last sign of life
    retry_of INTEGER,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    started_at TEXT,
    finished_at TEXT,
    started_unix INTEGER,
    finished_unix INTEGER
);
CREATE UNIQUE INDEX runs_one_active_step ON runs (dedupe)
    WHERE state IN ('queued', 'paused', 'running');
CREATE INDEX runs_by_state ON runs (state, id);
CREATE INDEX runs_by_repo ON runs (repo, id);

-- Progress lines and transcript artefacts (model calls, check runs) of a run.
CREATE TABLE run_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    kind TEXT NOT NULL,                 -- progress | model_call | check
    body TEXT NOT NULL                  -- a line, or JSON for artefacts
);
CREATE INDEX run_events_by_run ON run_events (run_id, seq);

-- Repos whose runs wait (pause/resume).
CREATE TABLE paused_repos (
    repo TEXT PRIMARY KEY,
    paused_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);
