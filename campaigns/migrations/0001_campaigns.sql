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
CREATE INDEX campaign_targets_open ON campaign_targets (campaign_id) WHERE state <> 'done';

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

-- At most one campaign call per patient per (clinic-local) day, whichever instance dials.
CREATE TABLE campaign_patient_days (
    patient_key  text NOT NULL,
    call_day     date NOT NULL,
    target_id    bigint NOT NULL,
    PRIMARY KEY (patient_key, call_day)
);

-- A trunk's channels, one row each (slot 1..channels): a claim takes free slots
-- FOR UPDATE SKIP LOCKED and writes its dial id there; settling or recovering the dial frees it.
-- Over every instance the trunk never carries more calls than it has slots, and claims on
-- different slots do not wait for each other. (No index on dial_id: its updates stay HOT.)
CREATE TABLE campaign_channels (
    trunk    text NOT NULL,
    slot     integer NOT NULL,
    dial_id  bigint,
    PRIMARY KEY (trunk, slot)
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

-- Claim up to p_want due calls on a trunk in one round trip (the caller's statement is the
-- transaction). Each call takes a free slot of the trunk (campaign_channels), so the limit
-- holds over every instance; due targets are locked FOR UPDATE SKIP LOCKED; the
-- do-not-call list is checked; a patient already called today (campaign_patient_days) waits for
-- the next local day; the clinic's channel limit is kept; each claim writes its attempt row.
-- p_tz and p_clinic_caps are per campaign, in the order of p_campaigns.
CREATE FUNCTION campaign_claim(
    p_now timestamptz, p_instance text, p_trunk text, p_channels integer, p_want integer,
    p_campaigns bigint[], p_tz text[], p_clinic_caps integer[], p_lease interval
) RETURNS TABLE (
    o_dial bigint, o_attempt integer, id bigint, campaign_id bigint, patient_key text,
    patient_id bigint, phone text, full_name text, lang text, clinic text,
    appointment_id bigint, doctor text, doctor_id integer, starts_at timestamptz, rule text,
    next_attempt_at timestamptz
) LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    free integer;
    r record;
    k integer;
    zone text;
    cap integer;
    busy integer;
    day date;
    owner bigint;
    taken integer := 0;
    slots integer[];
BEGIN
    IF (SELECT count(*) FROM campaign_channels c WHERE c.trunk = p_trunk) < p_channels THEN
        INSERT INTO campaign_channels (trunk, slot)
            SELECT p_trunk, g FROM generate_series(1, p_channels) g ON CONFLICT DO NOTHING;
    END IF;
    SELECT array_agg(s.slot) INTO slots FROM (
        SELECT c.slot FROM campaign_channels c
        WHERE c.trunk = p_trunk AND c.dial_id IS NULL AND c.slot <= p_channels
        ORDER BY c.slot LIMIT p_want FOR UPDATE SKIP LOCKED) s;
    free := coalesce(array_length(slots, 1), 0);
    IF free = 0 THEN
        RETURN;
    END IF;
    FOR r IN
        SELECT t.*, EXISTS (SELECT 1 FROM campaign_dnc n WHERE n.phone = t.phone) AS dnc
        FROM campaign_targets t
        WHERE t.state = 'pending' AND t.next_attempt_at <= p_now
          AND t.campaign_id = ANY (p_campaigns)
        ORDER BY t.next_attempt_at, t.id LIMIT free
        FOR UPDATE OF t SKIP LOCKED
    LOOP
        IF r.dnc THEN
            UPDATE campaign_targets t SET state = 'done', outcome = 'do_not_call', updated_at = p_now
                WHERE t.id = r.id;
            CONTINUE;
        END IF;
        k := array_position(p_campaigns, r.campaign_id);
        zone := p_tz[k];
        cap := p_clinic_caps[k];
        IF cap > 0 THEN
            SELECT count(*) INTO busy FROM campaign_dials d JOIN campaign_targets t
                ON t.id = d.target_id WHERE d.result = 'dialing' AND t.clinic = r.clinic;
            IF busy >= cap THEN
                CONTINUE;
            END IF;
        END IF;
        day := (p_now AT TIME ZONE zone)::date;
        INSERT INTO campaign_patient_days AS pd (patient_key, call_day, target_id)
            VALUES (r.patient_key, day, r.id)
            ON CONFLICT (patient_key, call_day) DO UPDATE SET target_id = pd.target_id
            RETURNING pd.target_id INTO owner;
        IF owner <> r.id THEN
            UPDATE campaign_targets t SET next_attempt_at = ((day + 1)::timestamp AT TIME ZONE zone),
                last_result = 'called_today', updated_at = p_now WHERE t.id = r.id;
            CONTINUE;
        END IF;
        UPDATE campaign_targets t SET state = 'dialing', attempts = t.attempts + 1,
            claimed_by = p_instance, lease_until = p_now + p_lease, updated_at = p_now
            WHERE t.id = r.id RETURNING t.attempts INTO o_attempt;
        INSERT INTO campaign_dials (target_id, campaign_id, attempt, phone, instance, trunk,
                                    call_day, started_at)
            VALUES (r.id, r.campaign_id, o_attempt, r.phone, p_instance, p_trunk, day, p_now)
            RETURNING campaign_dials.id INTO o_dial;
        taken := taken + 1;
        UPDATE campaign_channels c SET dial_id = o_dial
            WHERE c.trunk = p_trunk AND c.slot = slots[taken];
        id := r.id; campaign_id := r.campaign_id; patient_key := r.patient_key;
        patient_id := r.patient_id; phone := r.phone; full_name := r.full_name; lang := r.lang;
        clinic := r.clinic; appointment_id := r.appointment_id; doctor := r.doctor;
        doctor_id := r.doctor_id; starts_at := r.starts_at; rule := r.rule;
        next_attempt_at := r.next_attempt_at;
        RETURN NEXT;
    END LOOP;
END
$$;

-- Settle one dial: its attempt row and its target's next step, together (false when the dial
-- was already settled elsewhere, e.g. recorded 'unknown' after its lease expired).
CREATE FUNCTION campaign_settle(
    p_dial bigint, p_result text, p_outcome text, p_data jsonb, p_now timestamptz,
    p_state text, p_retry timestamptz, p_final text, p_instance text
) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    tid bigint;
    tr text;
BEGIN
    UPDATE campaign_dials SET result = p_result, outcome = p_outcome, data = p_data,
        ended_at = p_now WHERE id = p_dial AND result = 'dialing'
        RETURNING target_id, trunk INTO tid, tr;
    IF tid IS NULL THEN
        RETURN false;
    END IF;
    UPDATE campaign_channels SET dial_id = NULL WHERE trunk = tr AND dial_id = p_dial;
    UPDATE campaign_targets t SET state = p_state,
        next_attempt_at = coalesce(p_retry, t.next_attempt_at), last_result = p_result,
        outcome = p_final, claimed_by = '', lease_until = NULL, updated_at = p_now
        WHERE t.id = tid AND t.claimed_by = p_instance;
    RETURN true;
END
$$;

-- Settle a dial and claim the call that takes its channel, in one round trip (the freed
-- channel's next dial waits for nothing else). Always at least one row: ``settled``, and the
-- claim's columns (NULL when nothing was claimed).
CREATE FUNCTION campaign_settle_claim(
    p_dial bigint, p_result text, p_outcome text, p_data jsonb, p_now timestamptz,
    p_state text, p_retry timestamptz, p_final text, p_instance text,
    p_trunk text, p_channels integer, p_want integer, p_campaigns bigint[], p_tz text[],
    p_clinic_caps integer[], p_lease interval
) RETURNS TABLE (
    settled boolean, o_dial bigint, o_attempt integer, id bigint, campaign_id bigint,
    patient_key text, patient_id bigint, phone text, full_name text, lang text, clinic text,
    appointment_id bigint, doctor text, doctor_id integer, starts_at timestamptz, rule text,
    next_attempt_at timestamptz
) LANGUAGE plpgsql AS $$
DECLARE
    ok boolean;
BEGIN
    ok := campaign_settle(p_dial, p_result, p_outcome, p_data, p_now, p_state, p_retry,
                          p_final, p_instance);
    RETURN QUERY SELECT ok, c.* FROM campaign_claim(p_now, p_instance, p_trunk, p_channels,
        p_want, p_campaigns, p_tz, p_clinic_caps, p_lease) c;
    IF NOT FOUND THEN
        settled := ok;
        RETURN NEXT;
    END IF;
END
$$;
