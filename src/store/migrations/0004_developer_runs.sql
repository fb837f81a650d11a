-- How each Developer run went, per model: which local model is worth running.
CREATE TABLE developer_runs (
    id                INTEGER PRIMARY KEY,
    repo              TEXT NOT NULL,          -- lower(owner/name)
    task              TEXT NOT NULL,
    model             TEXT NOT NULL,          -- "builtin" for the deterministic bootstrap
    attempts          INTEGER NOT NULL,
    well_formed       INTEGER NOT NULL,       -- replies with parseable edit blocks
    malformed         INTEGER NOT NULL,
    applied_first_try INTEGER NOT NULL,       -- 1 when the first reply applied cleanly
    lazy_placeholders INTEGER NOT NULL,
    outcome           TEXT NOT NULL,          -- pr | blocked
    created_at        TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);
