-- Password attempts, counted in one statement that also decides whether the attempt may
-- go ahead, before the password is checked: parallel attempts cannot all pass one check.
-- Failures are counted per email whether or not an account has it, so an unknown email
-- is throttled exactly like a known one; a count idle for a day starts again.
CREATE TABLE login_failures (
    email text PRIMARY KEY CHECK (email = lower(email)),
    failures integer NOT NULL CHECK (failures > 0),
    last_attempt_at timestamptz NOT NULL
);
CREATE INDEX login_failures_last_attempt_idx ON login_failures (last_attempt_at);

INSERT INTO login_failures (email, failures, last_attempt_at)
    SELECT lower(email), failed_logins, last_failed_login_at FROM users
    WHERE failed_logins > 0 AND last_failed_login_at IS NOT NULL
    ON CONFLICT DO NOTHING;
ALTER TABLE users DROP COLUMN failed_logins, DROP COLUMN last_failed_login_at;

-- A token bucket of password attempts (login, sign-up, accepting an invitation) per client
-- address: an IPv4 address or an IPv6 /64. A bucket idle long enough to be full again is
-- the same as none and may be deleted.
CREATE TABLE login_address_budgets (
    address text PRIMARY KEY,
    tokens double precision NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX login_address_budgets_updated_idx ON login_address_budgets (updated_at);

-- Dashboard sessions by the random id (`jti`) of their signed token. A token is honoured
-- only while its row is live, so logging out, "log out everywhere", a password change and
-- removal from the organisation end a session at once on every replica. Tokens issued
-- before this migration have no row: their users log in once more.
CREATE TABLE sessions (
    id text PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    ended_at timestamptz,
    ended_because text CHECK (ended_because IN ('logout', 'everywhere', 'password', 'removed', 'switched')),
    CHECK ((ended_at IS NULL) = (ended_because IS NULL))
);
CREATE INDEX sessions_user_idx ON sessions (user_id);
