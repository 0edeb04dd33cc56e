-- callbacks: one job per patient need, one row per dial attempt, the do-not-call list.
-- Times are POSIX seconds (double precision) from the server's clock (tests set it).

CREATE TABLE IF NOT EXISTS callback_jobs (
    id               text PRIMARY KEY,
    phone            text NOT NULL,
    state            text NOT NULL CHECK (state IN ('open', 'active', 'done')),
    reason           text NOT NULL,
    source           text NOT NULL DEFAULT '',
    queue            text NOT NULL DEFAULT '',
    patient_id       text NOT NULL DEFAULT '',
    patient_name     text NOT NULL DEFAULT '',
    name             text NOT NULL DEFAULT '',
    comment          text NOT NULL DEFAULT '',
    utm              jsonb NOT NULL DEFAULT '{}'::jsonb,
    patient_tz       text NOT NULL DEFAULT '',
    call_ids         text[] NOT NULL DEFAULT '{}',
    priority         integer NOT NULL DEFAULT 0,
    missed_at        double precision NOT NULL,
    last_missed_at   double precision NOT NULL,
    missed_count     integer NOT NULL DEFAULT 1,
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  double precision NOT NULL,
    first_attempt_at double precision,
    claimed_by       text NOT NULL DEFAULT '',
    lease_owner      text NOT NULL DEFAULT '',
    lease_until      double precision NOT NULL DEFAULT 0,
    last_result      text NOT NULL DEFAULT '',
    outcome          text NOT NULL DEFAULT '',
    note             text NOT NULL DEFAULT '',
    closed_at        double precision,
    created_at       double precision NOT NULL
);

-- one open job per number: several misses merge into it
CREATE UNIQUE INDEX IF NOT EXISTS callback_jobs_one_open_per_phone
    ON callback_jobs (phone) WHERE state <> 'done';
CREATE INDEX IF NOT EXISTS callback_jobs_due
    ON callback_jobs (priority DESC, next_attempt_at) WHERE state = 'open';
CREATE INDEX IF NOT EXISTS callback_jobs_created ON callback_jobs (created_at DESC);

CREATE TABLE IF NOT EXISTS callback_attempts (
    id          text PRIMARY KEY,
    job_id      text REFERENCES callback_jobs (id),
    n           integer NOT NULL DEFAULT 0,
    operator    text NOT NULL,
    phone       text NOT NULL,
    state       text NOT NULL CHECK (state IN ('dialing', 'done')),
    result      text NOT NULL DEFAULT '',
    cause       text NOT NULL DEFAULT '',
    owner       text NOT NULL,
    lease_until double precision NOT NULL,
    uniqueid    text NOT NULL DEFAULT '',
    started_at  double precision NOT NULL,
    ended_at    double precision
);

-- never two dials of one patient, one operator or one job at the same moment
CREATE UNIQUE INDEX IF NOT EXISTS callback_attempts_one_per_phone
    ON callback_attempts (phone) WHERE state = 'dialing';
CREATE UNIQUE INDEX IF NOT EXISTS callback_attempts_one_per_operator
    ON callback_attempts (operator) WHERE state = 'dialing';
CREATE UNIQUE INDEX IF NOT EXISTS callback_attempts_one_per_job
    ON callback_attempts (job_id) WHERE state = 'dialing';
CREATE INDEX IF NOT EXISTS callback_attempts_job ON callback_attempts (job_id, started_at);

CREATE TABLE IF NOT EXISTS callback_dnc (
    phone    text PRIMARY KEY,
    reason   text NOT NULL DEFAULT '',
    added_by text NOT NULL DEFAULT '',
    added_at double precision NOT NULL
);
