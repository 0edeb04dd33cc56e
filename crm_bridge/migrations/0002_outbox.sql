-- CRM outbox: every push is a row here first. Workers claim due rows with FOR UPDATE SKIP LOCKED
-- and a lease (claim_token, locked_until); a crashed worker's lease expires and the row is claimed
-- again. After max attempts a row goes to status 'dead' (visible and retryable through the API).
CREATE TABLE crm_outbox (
    id               bigserial PRIMARY KEY,
    idempotency_key  text NOT NULL UNIQUE,
    kind             text NOT NULL,
    payload          jsonb NOT NULL,
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'delivering', 'delivered', 'dead')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    claim_token      uuid,
    claimed_by       text NOT NULL DEFAULT '',
    locked_until     timestamptz,
    last_error       text NOT NULL DEFAULT '',
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    delivered_at     timestamptz
);
CREATE INDEX crm_outbox_due ON crm_outbox (next_attempt_at) WHERE status = 'pending';
CREATE INDEX crm_outbox_leased ON crm_outbox (locked_until) WHERE status = 'delivering';
CREATE INDEX crm_outbox_dead ON crm_outbox (updated_at) WHERE status = 'dead';
