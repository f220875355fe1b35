-- Failed logins per user, so repeated failures can be slowed down.
ALTER TABLE users
    ADD COLUMN failed_logins integer NOT NULL DEFAULT 0,
    ADD COLUMN last_failed_login_at timestamptz;
