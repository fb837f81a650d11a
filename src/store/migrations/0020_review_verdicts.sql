-- Each review's verdict per model: how many criteria were met (with evidence), how many
-- "met" claims were refused for lack of evidence, whether the model failed and the built-in
-- review stood in, and the checks and fail-to-pass facts. For GET /stats/models.
CREATE TABLE review_verdicts (
    id            INTEGER PRIMARY KEY,
    repo          TEXT NOT NULL,          -- lower(owner/name)
    pr            INTEGER NOT NULL,
    sha           TEXT NOT NULL,
    model         TEXT NOT NULL,          -- "builtin" without a model
    criteria      INTEGER NOT NULL,
    met           INTEGER NOT NULL,
    downgraded    INTEGER NOT NULL,
    fell_back     INTEGER NOT NULL,
    checks_passed INTEGER NOT NULL,
    fail_to_pass  INTEGER,                -- NULL: no proof was run
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);
CREATE INDEX review_verdicts_by_model ON review_verdicts (model);
