-- Outbound campaigns: campaigns, their targets (one planned call each), every dial, the
-- one-campaign-call-per-patient-per-day ledger, the do-not-call list and the waitlist.
-- Phones are E.164. Times are timestamptz; call_day is the clinic's local date.

CREATE TABLE campaigns (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL,
    kind        text NOT NULL
                CHECK (kind IN ('reminder', 'confirmation', 'feedback', 'recall', 'waitlist', 'custom')),
    state       text NOT NULL DEFAULT 'paused'
                CHECK (state IN ('running', 'paused', 'done', 'cancelled')),
    settings    jsonb NOT NULL DEFAULT '{}',
    created_by  text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE campaign_targets (
    id               bigserial PRIMARY KEY,
    campaign_id      bigint NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    patient_key      text NOT NULL,          -- 'p:<crm id>' or 'tel:<e164>'
    patient_id       bigint,
    phone            text NOT NULL CHECK (phone ~ '^\+[1-9][0-9]{7,14}$'),
    full_name        text NOT NULL DEFAULT '',
    lang             text NOT NULL DEFAULT 'ru',
    clinic           text NOT NULL DEFAULT '',
    appointment_id   bigint,
    doctor           text NOT NULL DEFAULT '',
    doctor_id        integer,
    starts_at        timestamptz,
    rule             text NOT NULL DEFAULT '',
    state            text NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'dialing', 'done')),
    next_attempt_at  timestamptz NOT NULL,
    attempts         integer NOT NULL DEFAULT 0,
    last_result      text NOT NULL DEFAULT '',
    outcome          text NOT NULL DEFAULT '',
    claimed_by       text NOT NULL DEFAULT '',
    lease_until      timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE NULLS NOT DISTINCT (campaign_id, patient_key, appointment_id, rule)
);
CREATE INDEX campaign_targets_due ON campaign_targets (next_attempt_at) WHERE state = 'pending';
CREATE INDEX campaign_targets_dialing ON campaign_targets (lease_until) WHERE state = 'dialing';
CREATE INDEX campaign_targets_campaign ON campaign_targets (campaign_id, state);

CREATE TABLE campaign_dials (
    id           bigserial PRIMARY KEY,
    target_id    bigint NOT NULL REFERENCES campaign_targets(id) ON DELETE CASCADE,
    campaign_id  bigint NOT NULL,
    attempt      integer NOT NULL,
    phone        text NOT NULL,
    instance     text NOT NULL,
    trunk        text NOT NULL DEFAULT '',
    call_day     date NOT NULL,
    started_at   timestamptz NOT NULL,
    ended_at     timestamptz,
    result       text NOT NULL DEFAULT 'dialing',  -- answered|no_answer|busy|failed|unknown
    outcome      text NOT NULL DEFAULT '',
    data         jsonb NOT NULL DEFAULT '{}',
    UNIQUE (target_id, attempt)
);
CREATE INDEX campaign_dials_campaign ON campaign_dials (campaign_id);
CREATE INDEX campaign_dials_in_progress ON campaign_dials (trunk) WHERE result = 'dialing';

-- At most one campaign call per patient per (clinic-local) day, whichever instance dials.
CREATE TABLE campaign_patient_days (
    patient_key  text NOT NULL,
    call_day     date NOT NULL,
    target_id    bigint NOT NULL,
    PRIMARY KEY (patient_key, call_day)
);

CREATE TABLE campaign_dnc (
    phone       text PRIMARY KEY CHECK (phone ~ '^\+[1-9][0-9]{7,14}$'),
    source      text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE campaign_waitlist (
    id          bigserial PRIMARY KEY,
    patient_id  bigint,
    phone       text NOT NULL CHECK (phone ~ '^\+[1-9][0-9]{7,14}$'),
    full_name   text NOT NULL DEFAULT '',
    doctor_id   integer,
    active      boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX campaign_waitlist_doctor ON campaign_waitlist (doctor_id) WHERE active;
