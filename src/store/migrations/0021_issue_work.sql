-- Issues as a work source (issue 18). One row per issue gaffer took (or refused): the task
-- id reserved for it before anything is pushed (so a retry after a crash reuses the same
-- branch and finds its PR), the PR working it, and where it stands.
CREATE TABLE issue_work (
    repo       TEXT NOT NULL,            -- lower(owner/name)
    issue      INTEGER NOT NULL,
    task       TEXT,                     -- T-NNNN reserved for it
    pr         INTEGER,                  -- the PR that works it
    state      TEXT NOT NULL,            -- queued | running | review | done | blocked | stopped
    title      TEXT NOT NULL DEFAULT '',
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    PRIMARY KEY (repo, issue)
);

-- The sticky status comment of an issue or task PR: its id once known, the label state it
-- shows, and its timeline (JSON), so an edit rewrites the whole comment from here.
CREATE TABLE status_comments (
    repo       TEXT NOT NULL,
    number     INTEGER NOT NULL,
    comment_id INTEGER,
    phase      TEXT NOT NULL DEFAULT '',
    label      TEXT,                     -- the status label gaffer last put on it
    lines      TEXT NOT NULL DEFAULT '[]',
    body       TEXT NOT NULL DEFAULT '',  -- what the comment says now (no edit when unchanged)
    stopped    INTEGER NOT NULL DEFAULT 0, -- /gaffer stop: no automatic runs
    PRIMARY KEY (repo, number)
);

-- Each command comment is obeyed once, whichever path (webhook, poller, redelivery) saw it.
CREATE TABLE commands_seen (
    repo       TEXT NOT NULL,
    comment_id INTEGER NOT NULL,
    PRIMARY KEY (repo, comment_id)
);

-- `/gaffer fix <what>` on a task PR: the text the Developer's next round works on.
CREATE TABLE pr_feedback (
    repo       TEXT NOT NULL,
    pr         INTEGER NOT NULL,
    comment_id INTEGER NOT NULL,
    author     TEXT NOT NULL,
    text       TEXT NOT NULL,
    consumed   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (repo, comment_id)
);

-- The poller's place in each repo's comment listing (`GET /issues/comments?since=`).
CREATE TABLE comment_cursors (
    repo  TEXT PRIMARY KEY,
    since TEXT NOT NULL
);
