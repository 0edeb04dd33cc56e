-- Operator desk: people who log in, their sessions, call scripts, call outcomes, API tokens.
CREATE TABLE desk_users (
    id            bigserial PRIMARY KEY,
    login         text NOT NULL UNIQUE,
    name          text NOT NULL,
    password_hash text NOT NULL,
    roles         text[] NOT NULL DEFAULT '{}',
    extension     text NOT NULL DEFAULT '',
    queues        text[] NOT NULL DEFAULT '{}',
    skills        text[] NOT NULL DEFAULT '{}',
    active        boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
-- one operator per phone: a pop must never reach two people
CREATE UNIQUE INDEX desk_users_extension ON desk_users (extension) WHERE extension <> '' AND active;

-- only the SHA-256 of the session token is stored; the cookie holds the token
CREATE TABLE desk_sessions (
    token_hash  bytea PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES desk_users (id) ON DELETE CASCADE,
    csrf        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
CREATE INDEX desk_sessions_user ON desk_sessions (user_id);

CREATE TABLE desk_scripts (
    segment     text PRIMARY KEY,
    title       text NOT NULL,
    body        text NOT NULL,
    updated_by  text NOT NULL DEFAULT '',
    updated_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO desk_scripts (segment, title, body) VALUES
 ('default', 'Приветствие', 'Здравствуйте! Клиника, меня зовут {operator}. Чем могу помочь?'),
 ('new', 'Новый пациент', 'Здравствуйте! Вы у нас впервые? Подскажите, как к вам обращаться и что беспокоит?');

CREATE TABLE desk_call_outcomes (
    call_id     text PRIMARY KEY,
    user_id     bigint REFERENCES desk_users (id) ON DELETE SET NULL,
    operator    text NOT NULL DEFAULT '',
    extension   text NOT NULL DEFAULT '',
    phone       text NOT NULL DEFAULT '',
    tags        text[] NOT NULL DEFAULT '{}',
    outcome     text NOT NULL,
    reason      text NOT NULL DEFAULT '',
    notes       text NOT NULL DEFAULT '',
    recording   text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX desk_call_outcomes_user ON desk_call_outcomes (user_id, updated_at DESC);

-- scoped API tokens for machine clients: only the SHA-256 is kept; revoked ones stay for audit
CREATE TABLE desk_api_tokens (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL,
    token_hash  bytea NOT NULL UNIQUE,
    roles       text[] NOT NULL,
    created_by  text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
