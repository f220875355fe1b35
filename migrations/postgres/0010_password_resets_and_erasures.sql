-- Password reset links: only a SHA-256 of each random token is stored. A token works
-- once (used_at) and until expires_at; a new password spends every open token of the user.
CREATE TABLE password_resets (
    token_hash bytea PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at timestamptz
);
CREATE INDEX password_resets_user_idx ON password_resets (user_id, created_at);

-- Organisations deleted, whose ClickHouse rows are erased: right away, and again by
-- every query replica's sweep while spans the bus still held may arrive (an hour), after
-- which the row is deleted too. The tenant row itself is gone, so there is no foreign key.
CREATE TABLE tenant_erasures (
    tenant_id uuid PRIMARY KEY,
    requested_at timestamptz NOT NULL DEFAULT now()
);
