-- Audit of personal-data requests (export, erase) and retention runs. The phone number itself
-- is not kept: its SHA-256 (to find a request again when the patient asks) and a masked form.
CREATE TABLE IF NOT EXISTS privacy_audit (
    id            bigserial PRIMARY KEY,
    at            timestamptz NOT NULL DEFAULT now(),
    action        text NOT NULL CHECK (action IN ('export', 'erase', 'retention')),
    actor         text NOT NULL,
    phone_sha256  text NOT NULL DEFAULT '',
    phone_masked  text NOT NULL DEFAULT '',
    reason        text NOT NULL DEFAULT '',
    counts        jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX IF NOT EXISTS privacy_audit_at ON privacy_audit (at DESC);
CREATE INDEX IF NOT EXISTS privacy_audit_phone ON privacy_audit (phone_sha256) WHERE phone_sha256 <> '';
