-- routing: call tracking (campaigns, DIDs, one decision record per call) and supervisor overrides.

-- Mirror of the rules file's [campaigns]/[dids] (rewritten on every rules (re)load) so marketers'
-- reports can join calls to campaigns without reading the TOML.
CREATE TABLE IF NOT EXISTS routing_campaigns (
    name         text PRIMARY KEY,
    source       text NOT NULL,
    paid         boolean NOT NULL DEFAULT false,
    rule_version text NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS routing_dids (
    did          text PRIMARY KEY,
    campaign     text NOT NULL DEFAULT '',
    source       text NOT NULL DEFAULT '',
    paid         boolean NOT NULL DEFAULT false,
    clinic       text NOT NULL DEFAULT '',
    queue        text NOT NULL DEFAULT '',
    rule_version text NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- The call tracking record: why each call went where it went (join calls on linkedid).
CREATE TABLE IF NOT EXISTS route_decisions (
    uniqueid        text PRIMARY KEY,
    linkedid        text NOT NULL,
    origin          text NOT NULL CHECK (origin IN ('agi', 'ari', 'api')),
    did             text NOT NULL DEFAULT '',
    ad_source       text NOT NULL DEFAULT '',
    campaign        text NOT NULL DEFAULT '',
    paid            boolean NOT NULL DEFAULT false,
    clinic          text NOT NULL DEFAULT '',
    queue           text NOT NULL,
    mode            text NOT NULL CHECK (mode IN ('queue', 'bot', 'callback', 'voicemail')),
    priority        integer NOT NULL DEFAULT 0,
    preferred_agent text NOT NULL DEFAULT '',
    sticky_seconds  integer NOT NULL DEFAULT 0,
    language        text NOT NULL DEFAULT '',
    skill           text NOT NULL DEFAULT '',
    reasons         text[] NOT NULL DEFAULT '{}',
    rule_version    text NOT NULL,
    profile_status  text NOT NULL,
    patient_id      text NOT NULL DEFAULT '',
    elapsed_ms      real NOT NULL DEFAULT 0,
    decided_at      timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS route_decisions_linkedid ON route_decisions (linkedid);
CREATE INDEX IF NOT EXISTS route_decisions_decided_at ON route_decisions (decided_at);
CREATE INDEX IF NOT EXISTS route_decisions_campaign ON route_decisions (campaign, decided_at);

CREATE TABLE IF NOT EXISTS routing_overrides (
    id          text PRIMARY KEY,
    scope       text NOT NULL CHECK (scope IN ('all', 'queue', 'skill', 'campaign', 'did')),
    value       text NOT NULL DEFAULT '',
    mode        text CHECK (mode IN ('queue', 'bot', 'callback', 'voicemail')),
    queue       text,
    priority    integer,
    note        text NOT NULL DEFAULT '',
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS routing_overrides_expires ON routing_overrides (expires_at);

CREATE TABLE IF NOT EXISTS routing_override_audit (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL,
    action      text NOT NULL CHECK (action IN ('create', 'delete', 'expire')),
    actor       text NOT NULL,
    override_id text NOT NULL,
    override    jsonb NOT NULL
);
CREATE INDEX IF NOT EXISTS routing_override_audit_at ON routing_override_audit (at DESC);
