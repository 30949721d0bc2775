-- The same tables, columns and indexes as schema/sqlite/001_init.sql, in PostgreSQL types.
-- context and files_changed stay TEXT holding JSON, as in SQLite: JSONB would reorder the
-- keys of a context and refuse \u0000, so the tickets read back would differ between backends.
CREATE TABLE tickets (
    id               BIGSERIAL PRIMARY KEY,
    delivery_id      TEXT             NOT NULL UNIQUE,
    event            TEXT             NOT NULL,
    kind             TEXT             NOT NULL,
    repository       TEXT             NOT NULL,
    clone_url        TEXT             NOT NULL,
    installation_id  BIGINT,
    number           BIGINT           NOT NULL,
    is_pull_request  BOOLEAN          NOT NULL DEFAULT FALSE,
    title            TEXT             NOT NULL DEFAULT '',
    body             TEXT             NOT NULL DEFAULT '',
    requested_by     TEXT             NOT NULL,
    instructions     TEXT             NOT NULL DEFAULT '',
    context          TEXT             NOT NULL DEFAULT '{}',
    state            TEXT             NOT NULL DEFAULT 'queued',
    conclusion       TEXT,
    error            TEXT,
    branch           TEXT,
    head_sha         TEXT,
    pr_number        BIGINT,
    pr_url           TEXT,
    check_run_id     BIGINT,
    comment_id       BIGINT,
    attempts         INTEGER          NOT NULL DEFAULT 0,
    created_at       DOUBLE PRECISION NOT NULL,
    started_at       DOUBLE PRECISION,
    finished_at      DOUBLE PRECISION,
    lease_owner      TEXT,
    lease_expires_at DOUBLE PRECISION,
    tokens_input     BIGINT           NOT NULL DEFAULT 0,
    tokens_output    BIGINT           NOT NULL DEFAULT 0,
    cost             DOUBLE PRECISION NOT NULL DEFAULT 0,
    files_changed    TEXT             NOT NULL DEFAULT '[]'
);
CREATE INDEX tickets_state ON tickets (state, id);
CREATE INDEX tickets_subject ON tickets (repository, number, state);
-- One running ticket per issue, enforced by the database for every writer in every
-- process: the backstop under PostgresStore.claim (see its docstring). SQLite needs
-- no such index because its writers are serialized by BEGIN IMMEDIATE.
CREATE UNIQUE INDEX tickets_one_running ON tickets (repository, number) WHERE state = 'running';

CREATE TABLE ticket_logs (
    id        BIGSERIAL PRIMARY KEY,
    ticket_id BIGINT           NOT NULL REFERENCES tickets (id),
    at        DOUBLE PRECISION NOT NULL,
    kind      TEXT             NOT NULL,
    message   TEXT             NOT NULL
);
CREATE INDEX ticket_logs_ticket ON ticket_logs (ticket_id, id);
