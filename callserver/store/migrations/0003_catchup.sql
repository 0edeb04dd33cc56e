-- Catch-up from Asterisk's durable records (issues 9 and 15, callserver.store.catchup).
--
-- catchup_state: how far Asterisk's `cdr` table was read (the latest call end processed, in
-- Asterisk's clock); the next pass re-reads from a safety margin before it.
CREATE TABLE catchup_state (
    name       text PRIMARY KEY,
    watermark  timestamptz NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- catchup_merged: every call the catch-up looked at, with a digest of what the records said;
-- the same records are never merged (nor published on the bus) twice.
CREATE TABLE catchup_merged (
    call_id     text PRIMARY KEY,
    fingerprint text NOT NULL,
    action      text NOT NULL,   -- inserted | corrected | unchanged | skipped
    merged_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX catchup_merged_at_idx ON catchup_merged (merged_at);
