-- The repo registry: one row per target repository gaffer knows about.
CREATE TABLE repos (
    id             INTEGER PRIMARY KEY,
    owner          TEXT NOT NULL,
    name           TEXT NOT NULL,
    mode           TEXT NOT NULL CHECK (mode IN ('observe', 'pr', 'disabled')),
    default_branch TEXT NOT NULL,
    clone_url      TEXT NOT NULL,
    forge          TEXT NOT NULL,
    -- JSON object of per-repo overrides (models per role, poll intervals, the NAME of the
    -- env var holding the webhook secret). Never a secret itself.
    overrides      TEXT NOT NULL DEFAULT '{}',
    created_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    updated_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);

-- GitHub names are case-insensitive: Acme/Widget and acme/widget are one repo.
CREATE UNIQUE INDEX repos_full_name ON repos (lower(owner), lower(name));

-- Small key/value facts about this installation (e.g. whether the env seed ran).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
