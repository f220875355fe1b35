-- Alerting: rules, notification channels and the links between them, silences, the state
-- of every alert, its history, the observed values behind the charts, and the delivery
-- log. Every table carries the tenant; every statement of Weft filters by it.

-- A rule as the JSON of weft_model::alerting::AlertRule (validated before it is stored).
-- Rules are evaluated (aggregate rules; span-duration rules for resolving) by whichever alerting replica claims them first: a
-- replica sets claimed_by / claimed_until (FOR UPDATE SKIP LOCKED) and moves
-- next_evaluation_at on, so two replicas never evaluate one rule at once.
CREATE TABLE alert_rules (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    rule jsonb NOT NULL,
    per_span boolean NOT NULL,
    muted_until timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    next_evaluation_at timestamptz NOT NULL DEFAULT now(),
    claimed_by text,
    claimed_until timestamptz
);
CREATE INDEX alert_rules_tenant ON alert_rules (tenant_id);
CREATE INDEX alert_rules_due ON alert_rules (next_evaluation_at);

-- Where notifications go. `target` holds the secret parts (webhook URLs and signing
-- secrets) and is never returned by the API after saving; `display` is what may be shown.
CREATE TABLE alert_channels (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('webhook', 'slack', 'email')),
    display text NOT NULL,
    target jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alert_channels_tenant ON alert_channels (tenant_id);

CREATE TABLE alert_rule_channels (
    rule_id uuid NOT NULL REFERENCES alert_rules (id) ON DELETE CASCADE,
    channel_id uuid NOT NULL REFERENCES alert_channels (id) ON DELETE CASCADE,
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    PRIMARY KEY (rule_id, channel_id)
);

-- Silences: by rule, or by labels that a rule's labels must all include.
CREATE TABLE alert_silences (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    rule_id uuid REFERENCES alert_rules (id) ON DELETE CASCADE,
    labels jsonb NOT NULL DEFAULT '{}',
    ends_at timestamptz NOT NULL,
    comment text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alert_silences_tenant ON alert_silences (tenant_id, ends_at);

-- The state of each alert: per rule (series '') for aggregate rules, per service and
-- operation for span-duration rules. `transition` counts the changes; a change is made
-- by one conditional UPDATE, so of two replicas seeing the same change only one wins it.
CREATE TABLE alert_states (
    rule_id uuid NOT NULL REFERENCES alert_rules (id) ON DELETE CASCADE,
    series text NOT NULL,
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    state text NOT NULL CHECK (state IN ('ok', 'pending', 'firing', 'resolved')),
    since timestamptz NOT NULL DEFAULT now(),
    breached_since timestamptz,
    last_seen_at timestamptz,
    value double precision,
    trace_id text,
    transition bigint NOT NULL DEFAULT 0,
    notified_at timestamptz,
    PRIMARY KEY (rule_id, series)
);
CREATE INDEX alert_states_tenant ON alert_states (tenant_id);

-- Every notifying change (firing, resolved, a repeat while firing): what the
-- notification says. Unique per (rule, series, transition, repeat) so a change is
-- recorded once however many replicas saw it.
CREATE TABLE alert_events (
    id bigserial PRIMARY KEY,
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    rule_id uuid NOT NULL REFERENCES alert_rules (id) ON DELETE CASCADE,
    series text NOT NULL,
    transition bigint NOT NULL,
    repeat integer NOT NULL DEFAULT 0,
    state text NOT NULL,
    value double precision,
    trace_id text,
    silenced boolean NOT NULL DEFAULT false,
    at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (rule_id, series, transition, repeat)
);
CREATE INDEX alert_events_tenant ON alert_events (tenant_id, at DESC);

-- Observed values of aggregate rules, one per evaluation, for the history chart.
CREATE TABLE alert_observations (
    rule_id uuid NOT NULL REFERENCES alert_rules (id) ON DELETE CASCADE,
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    at timestamptz NOT NULL DEFAULT now(),
    value double precision,
    state text NOT NULL
);
CREATE INDEX alert_observations_rule ON alert_observations (rule_id, at);

-- One delivery per (event, channel): the unique key makes a notification exist once.
-- Senders claim due deliveries with FOR UPDATE SKIP LOCKED and a claim time; a failed
-- attempt is logged and retried with backoff.
CREATE TABLE alert_deliveries (
    id bigserial PRIMARY KEY,
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    event_id bigint REFERENCES alert_events (id) ON DELETE CASCADE,
    channel_id uuid NOT NULL REFERENCES alert_channels (id) ON DELETE CASCADE,
    test boolean NOT NULL DEFAULT false,
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    claimed_by text,
    claimed_until timestamptz,
    last_error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at timestamptz,
    UNIQUE (event_id, channel_id)
);
CREATE INDEX alert_deliveries_due ON alert_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX alert_deliveries_tenant ON alert_deliveries (tenant_id, created_at DESC);
