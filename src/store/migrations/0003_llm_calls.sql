-- Every model call: what it cost and whether it worked, per role and model.
CREATE TABLE llm_calls (
    id                INTEGER PRIMARY KEY,
    role              TEXT NOT NULL,
    model             TEXT NOT NULL,
    ok                INTEGER NOT NULL,
    error             TEXT,
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    total_ms          INTEGER NOT NULL DEFAULT 0,
    created_at        TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);
CREATE INDEX llm_calls_by_model ON llm_calls (model, role);
