-- The run a model call was made for (NULL outside a run and for calls recorded before
-- this column), so the per-model statistics can be split per repo (runs.repo).
ALTER TABLE llm_calls ADD COLUMN run_id INTEGER;
CREATE INDEX llm_calls_by_run ON llm_calls (run_id);
