-- The checks' results on a base commit, once per base SHA and set of commands, so a change
-- is judged by what it newly breaks (a restart does not re-run the base).
CREATE TABLE check_baselines (
    repo       TEXT NOT NULL,             -- lower(owner/name)
    sha        TEXT NOT NULL,
    plan_key   TEXT NOT NULL,             -- fingerprint of the set-up/test/lint commands
    side       TEXT NOT NULL,             -- JSON: exits and per-test results
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    PRIMARY KEY (repo, sha, plan_key)
);
