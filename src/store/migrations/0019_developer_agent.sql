-- The agent Developer's facts per run, for GET /stats/models: which edit format, how many
-- steps, edits applied and undone, whether the checks passed, whether a fail-to-pass test
-- proved the change (NULL: no proof was asked for), tokens, and which feedback round.
ALTER TABLE developer_runs ADD COLUMN edit_format TEXT NOT NULL DEFAULT '';
ALTER TABLE developer_runs ADD COLUMN steps INTEGER NOT NULL DEFAULT 0;
ALTER TABLE developer_runs ADD COLUMN edits_applied INTEGER NOT NULL DEFAULT 0;
ALTER TABLE developer_runs ADD COLUMN edits_undone INTEGER NOT NULL DEFAULT 0;
ALTER TABLE developer_runs ADD COLUMN checks_passed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE developer_runs ADD COLUMN fail_to_pass INTEGER;
ALTER TABLE developer_runs ADD COLUMN prompt_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE developer_runs ADD COLUMN completion_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE developer_runs ADD COLUMN iteration INTEGER NOT NULL DEFAULT 0;
ALTER TABLE developer_runs ADD COLUMN pr_number INTEGER;
