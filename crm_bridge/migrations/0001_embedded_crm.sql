-- Embedded CRM (crm_bridge): clinics, doctors, patients with several phones, appointments,
-- treatment plans, and what callserver pushes (call records, outcomes, callback/appointment requests).
-- Phone numbers are stored as E.164 (+79161234567); crm_bridge normalises before writing.

CREATE TABLE crm_clinics (
    id          serial PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    address     text NOT NULL DEFAULT '',
    timezone    text NOT NULL DEFAULT 'Europe/Moscow'
);

CREATE TABLE crm_specialties (
    id      serial PRIMARY KEY,
    name    text NOT NULL UNIQUE
);

CREATE TABLE crm_doctors (
    id          serial PRIMARY KEY,
    clinic_id   integer NOT NULL REFERENCES crm_clinics(id),
    full_name   text NOT NULL,
    active      boolean NOT NULL DEFAULT true,
    UNIQUE (clinic_id, full_name)
);

CREATE TABLE crm_doctor_specialties (
    doctor_id     integer NOT NULL REFERENCES crm_doctors(id) ON DELETE CASCADE,
    specialty_id  integer NOT NULL REFERENCES crm_specialties(id),
    PRIMARY KEY (doctor_id, specialty_id)
);

CREATE TABLE crm_patients (
    id                   bigserial PRIMARY KEY,
    external_id          text UNIQUE,
    full_name            text NOT NULL,
    birth_date           date,
    language             text NOT NULL DEFAULT 'ru',
    segment              text NOT NULL DEFAULT '',
    vip                  boolean NOT NULL DEFAULT false,
    coordinator          text NOT NULL DEFAULT '',
    last_operator        text NOT NULL DEFAULT '',
    clinic_id            integer REFERENCES crm_clinics(id),
    notes                text NOT NULL DEFAULT '',
    balance              numeric(12, 2) NOT NULL DEFAULT 0,
    prepayment_required  boolean NOT NULL DEFAULT false,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE crm_patient_phones (
    phone       text NOT NULL CHECK (phone ~ '^\+[1-9][0-9]{7,14}$'),
    patient_id  bigint NOT NULL REFERENCES crm_patients(id) ON DELETE CASCADE,
    kind        text NOT NULL DEFAULT 'mobile',
    PRIMARY KEY (phone, patient_id)
);
CREATE INDEX crm_patient_phones_patient ON crm_patient_phones (patient_id);

CREATE TABLE crm_appointments (
    id            bigserial PRIMARY KEY,
    external_id   text UNIQUE,
    patient_id    bigint NOT NULL REFERENCES crm_patients(id) ON DELETE CASCADE,
    doctor_id     integer REFERENCES crm_doctors(id),
    clinic_id     integer REFERENCES crm_clinics(id),
    room          text NOT NULL DEFAULT '',
    starts_at     timestamptz NOT NULL,
    duration_min  integer NOT NULL DEFAULT 30 CHECK (duration_min > 0),
    status        text NOT NULL DEFAULT 'booked'
                  CHECK (status IN ('booked', 'confirmed', 'came', 'no_show', 'cancelled')),
    service       text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX crm_appointments_patient_time ON crm_appointments (patient_id, starts_at);

CREATE TABLE crm_treatment_plans (
    id          bigserial PRIMARY KEY,
    patient_id  bigint NOT NULL REFERENCES crm_patients(id) ON DELETE CASCADE,
    title       text NOT NULL,
    status      text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'done', 'cancelled')),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX crm_treatment_plans_patient ON crm_treatment_plans (patient_id);

CREATE TABLE crm_treatment_plan_items (
    id           bigserial PRIMARY KEY,
    plan_id      bigint NOT NULL REFERENCES crm_treatment_plans(id) ON DELETE CASCADE,
    description  text NOT NULL,
    status       text NOT NULL DEFAULT 'planned' CHECK (status IN ('planned', 'done', 'cancelled')),
    price        numeric(12, 2) NOT NULL DEFAULT 0,
    planned_for  date
);
CREATE INDEX crm_treatment_plan_items_plan ON crm_treatment_plan_items (plan_id);

-- What callserver pushes. Each has the push's idempotency key: a redelivery is a no-op.
CREATE TABLE crm_call_records (
    id               bigserial PRIMARY KEY,
    idempotency_key  text NOT NULL UNIQUE,
    call_id          text NOT NULL,
    phone            text NOT NULL DEFAULT '',
    patient_id       bigint REFERENCES crm_patients(id) ON DELETE SET NULL,
    state            text NOT NULL,
    agent            text NOT NULL DEFAULT '',
    ad_source        text NOT NULL DEFAULT '',
    started_at       timestamptz,
    payload          jsonb NOT NULL,
    received_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX crm_call_records_phone ON crm_call_records (phone, started_at);

CREATE TABLE crm_call_outcomes (
    id               bigserial PRIMARY KEY,
    idempotency_key  text NOT NULL UNIQUE,
    call_id          text NOT NULL,
    phone            text NOT NULL DEFAULT '',
    tags             text[] NOT NULL DEFAULT '{}',
    outcome          text NOT NULL DEFAULT '',
    operator         text NOT NULL DEFAULT '',
    comment          text NOT NULL DEFAULT '',
    received_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX crm_call_outcomes_call ON crm_call_outcomes (call_id);

CREATE TABLE crm_callback_requests (
    id               bigserial PRIMARY KEY,
    idempotency_key  text NOT NULL UNIQUE,
    phone            text NOT NULL,
    patient_id       bigint REFERENCES crm_patients(id) ON DELETE SET NULL,
    call_id          text NOT NULL DEFAULT '',
    reason           text NOT NULL DEFAULT '',
    due_at           timestamptz,
    comment          text NOT NULL DEFAULT '',
    status           text NOT NULL DEFAULT 'open',
    created_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE crm_appointment_requests (
    id               bigserial PRIMARY KEY,
    idempotency_key  text NOT NULL UNIQUE,
    phone            text NOT NULL,
    full_name        text NOT NULL DEFAULT '',
    patient_id       bigint REFERENCES crm_patients(id) ON DELETE SET NULL,
    call_id          text NOT NULL DEFAULT '',
    doctor_id        integer REFERENCES crm_doctors(id) ON DELETE SET NULL,
    specialty        text NOT NULL DEFAULT '',
    clinic           text NOT NULL DEFAULT '',
    preferred_time   text NOT NULL DEFAULT '',
    comment          text NOT NULL DEFAULT '',
    status           text NOT NULL DEFAULT 'open',
    created_at       timestamptz NOT NULL DEFAULT now()
);
