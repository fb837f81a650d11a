-- When the poller last looked at a repo (every cycle, changed or not), for the dashboard.
ALTER TABLE poll_state ADD COLUMN polled_at TEXT;
