-- Calls and their event timelines, written by callserver.store.call_writer.CallWriter.
--
-- calls: one row per call (id = Asterisk Linkedid), always the latest snapshot of the live model.
-- Other packages extend it in their own migrations with `ALTER TABLE calls ADD COLUMN … NULL`
-- (or with a DEFAULT): the writer names its columns explicitly, so added columns are left alone.
CREATE TABLE calls (
    id               text PRIMARY KEY,
    direction        text NOT NULL DEFAULT 'inbound',
    caller           text NOT NULL DEFAULT '',
    caller_name      text NOT NULL DEFAULT '',
    did              text NOT NULL DEFAULT '',
    ad_source        text NOT NULL DEFAULT '',
    queue            text NOT NULL DEFAULT '',
    agent            text NOT NULL DEFAULT '',
    agent_name       text NOT NULL DEFAULT '',
    state            text NOT NULL,
    started_at       timestamptz NOT NULL,
    queued_at        timestamptz,
    answered_at      timestamptz,
    ended_at         timestamptz,
    wait_seconds     double precision,
    talk_seconds     double precision,
    hold_seconds     double precision,
    abandon_position integer,
    hangup_by        text NOT NULL DEFAULT '',
    hangup_cause     text NOT NULL DEFAULT '',
    variables        jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- time (event clock) of the latest event applied; an older replayed snapshot never
    -- overwrites a newer one
    updated_at       timestamptz NOT NULL
);

CREATE INDEX calls_recent_idx ON calls (started_at DESC, id DESC);
CREATE INDEX calls_caller_idx ON calls (caller, started_at DESC);

-- call_events: the timeline. `key` identifies an event independently of when it was written
-- (hash of type, time and the event's own fields), so a resync replay or a retried batch
-- inserts nothing twice. Not a foreign key to calls: event rows and the call row are written
-- in the same transaction but may come in different batches.
CREATE TABLE call_events (
    id       bigserial PRIMARY KEY,
    call_id  text NOT NULL,
    type     text NOT NULL,
    at       timestamptz NOT NULL,
    key      text NOT NULL,
    payload  jsonb NOT NULL DEFAULT '{}'::jsonb,
    CONSTRAINT call_events_call_key_uniq UNIQUE (call_id, key)
);

CREATE INDEX call_events_timeline_idx ON call_events (call_id, at, id);
