-- dashboards: indexes the reports need on the core's and routing's tables, the dashboards' own
-- tables (listen/whisper/barge audit, logged-in samples for staffing, overload transitions) and
-- a phone normaliser for joining caller IDs to the CRM's E.164 numbers.

-- A callback to a missed caller: an outbound call whose number (did or caller) is the patient's.
CREATE INDEX IF NOT EXISTS calls_outbound_did_idx ON calls (did, started_at)
    WHERE direction <> 'inbound';
-- Operator KPIs over a range.
CREATE INDEX IF NOT EXISTS calls_agent_idx ON calls (agent, started_at) WHERE agent <> '';
-- The rollup's passes read the calls written since its watermark. BRIN: tiny and cheap to keep
-- on an append-mostly timestamp (PostgreSQL 16+ also keeps the writer's updates HOT with it).
CREATE INDEX IF NOT EXISTS calls_updated_brin ON calls USING brin (updated_at);
-- Missed rings per operator (AgentRingNoAnswer events in the timeline).
CREATE INDEX IF NOT EXISTS call_events_ring_noanswer_idx ON call_events (at)
    WHERE type = 'AgentRingNoAnswer';

-- +79161234567 / 89161234567 / 79161234567 / "+7 (916) 123-45-67" → +79161234567; other text
-- is returned unchanged (never guessed). Same rule as callserver.core.phone for Russian numbers.
CREATE OR REPLACE FUNCTION dashboards_phone(raw text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN raw ~ '^\s*\+' AND d ~ '^[1-9][0-9]{7,14}$' THEN '+' || d
        WHEN d ~ '^[78][0-9]{10}$' THEN '+7' || substr(d, 2)
        WHEN d ~ '^[3489][0-9]{9}$' THEN '+7' || d
        ELSE raw END
    FROM (SELECT regexp_replace(raw, '[^0-9]', '', 'g') AS d) AS s
$$;

CREATE TABLE IF NOT EXISTS dashboards_spy_audit (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL,
    actor       text NOT NULL,
    supervisor  text NOT NULL,
    agent       text NOT NULL,
    mode        text NOT NULL CHECK (mode IN ('listen', 'whisper', 'barge')),
    call_id     text NOT NULL DEFAULT '',
    result      text NOT NULL,
    reason      text NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS dashboards_spy_audit_at ON dashboards_spy_audit (at DESC);

CREATE TABLE IF NOT EXISTS dashboards_agent_samples (
    at         timestamptz NOT NULL,
    queue      text NOT NULL,
    logged_in  integer NOT NULL
);
CREATE INDEX IF NOT EXISTS dashboards_agent_samples_at ON dashboards_agent_samples (at);

CREATE TABLE IF NOT EXISTS dashboards_overload_log (
    id              bigserial PRIMARY KEY,
    at              timestamptz NOT NULL,
    queue           text NOT NULL,
    state           text NOT NULL CHECK (state IN ('overloaded', 'normal')),
    since           timestamptz NOT NULL,
    estimated_wait  double precision,
    abandon_rate    double precision NOT NULL
);
CREATE INDEX IF NOT EXISTS dashboards_overload_log_at ON dashboards_overload_log (at DESC);

-- The marketer reports' rollup: one row per finished inbound call with its tracking attributes
-- and the flags that would otherwise need joins at report time (dashboards.rollup keeps it
-- current: new calls, callbacks and reached patients, bookings).
CREATE TABLE IF NOT EXISTS dashboards_call_facts (
    call_id         text PRIMARY KEY,
    started_at      timestamptz NOT NULL,
    phone           text NOT NULL,
    caller_key      bigint NOT NULL,
    did             text NOT NULL DEFAULT '',
    source          text NOT NULL DEFAULT '',
    campaign        text NOT NULL DEFAULT '',
    clinic          text NOT NULL DEFAULT '',
    queue           text NOT NULL DEFAULT '',
    agent           text NOT NULL DEFAULT '',
    local_dow       smallint NOT NULL,
    local_hour      smallint NOT NULL,
    known           boolean NOT NULL DEFAULT false,
    answered        boolean NOT NULL DEFAULT false,
    queued          boolean NOT NULL DEFAULT false,
    wait_seconds    double precision,
    talk_seconds    double precision,
    called_back     boolean NOT NULL DEFAULT false,
    callback_agent  text,
    callback_at     timestamptz,
    reached         boolean NOT NULL DEFAULT false,
    appointment_id  bigint,
    appointment_status text,
    rolled_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS dashboards_call_facts_started ON dashboards_call_facts (started_at);
CREATE INDEX IF NOT EXISTS dashboards_call_facts_phone ON dashboards_call_facts (phone, started_at);
CREATE INDEX IF NOT EXISTS dashboards_call_facts_agent ON dashboards_call_facts (agent, started_at)
    WHERE agent <> '';
CREATE INDEX IF NOT EXISTS dashboards_call_facts_rolled ON dashboards_call_facts (rolled_at);
CREATE INDEX IF NOT EXISTS dashboards_call_facts_appointment
    ON dashboards_call_facts (appointment_id) WHERE appointment_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS dashboards_call_facts_callback
    ON dashboards_call_facts (callback_agent, started_at) WHERE callback_agent IS NOT NULL;

CREATE TABLE IF NOT EXISTS dashboards_rollup_state (
    name       text PRIMARY KEY,
    watermark  timestamptz NOT NULL
);
