-- Call flows (issue 15): agent turns, time on hold, E.164 caller; one meaning per column.
--
-- Until now `hold_seconds` held the queue wait of *abandoned* calls (QueueCallerAbandon
-- HoldTime) while `wait_seconds` held the queue wait of answered ones. From now on:
--   wait_seconds  seconds waited in the queue (answered and abandoned calls alike)
--   hold_seconds  seconds the caller was on hold (Hold … Unhold) while talking to agents
--   talk_seconds  seconds talking with agents, hold excluded, every agent's turn summed
-- Old rows are moved to that meaning; no old row has a time on hold (it was never recorded).
UPDATE calls
   SET wait_seconds = COALESCE(wait_seconds, hold_seconds),
       hold_seconds = NULL
 WHERE hold_seconds IS NOT NULL;

COMMENT ON COLUMN calls.wait_seconds IS 'seconds waited in the queue';
COMMENT ON COLUMN calls.hold_seconds IS 'seconds on hold while connected to agents';
COMMENT ON COLUMN calls.talk_seconds IS 'seconds talking with agents, hold excluded';

-- The caller number as dialled stays in `caller`; its E.164 form (empty when it cannot be
-- read as a phone number) goes next to it, for lookups and the CRM.
ALTER TABLE calls ADD COLUMN caller_e164 text NOT NULL DEFAULT '';
-- Same rules as callserver.core.phone.normalize_phone for the Russian forms (+7/7/8 and ten
-- national digits, zone 7 numbers start with 3-9 after the 7); the writer fills new rows.
UPDATE calls SET caller_e164 = CASE
    WHEN caller ~ '^\+7[3-9][0-9]{9}$' THEN caller
    WHEN caller ~ '^[78][3-9][0-9]{9}$' THEN '+7' || substr(caller, 2)
    WHEN caller ~ '^[3489][0-9]{9}$' THEN '+7' || caller
    WHEN caller ~ '^\+[1-689][0-9]{7,14}$' THEN caller
    ELSE '' END
 WHERE caller <> '';
CREATE INDEX calls_caller_e164_idx ON calls (caller_e164, started_at DESC);

-- Every agent who talked to the caller, in order: [{"agent", "agent_name", "connected_at",
-- "ended_at", "talk_seconds", "hold_seconds", "via", "end", "held_since"}] (times in POSIX
-- seconds, as in the live model's AgentTurn).
ALTER TABLE calls ADD COLUMN agents jsonb NOT NULL DEFAULT '[]'::jsonb;

-- Open calls (no end yet) are read at every AMI (re)connect: restored or closed by resync.
CREATE INDEX calls_open_idx ON calls (started_at) WHERE ended_at IS NULL;
