CREATE TABLE tickets (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id      TEXT    NOT NULL UNIQUE,
    event            TEXT    NOT NULL,
    kind             TEXT    NOT NULL,
    repository       TEXT    NOT NULL,
    clone_url        TEXT    NOT NULL,
    installation_id  INTEGER,
    number           INTEGER NOT NULL,
    is_pull_request  INTEGER NOT NULL DEFAULT 0,
    title            TEXT    NOT NULL DEFAULT '',
    body             TEXT    NOT NULL DEFAULT '',
    requested_by     TEXT    NOT NULL,
    instructions     TEXT    NOT NULL DEFAULT '',
    context          TEXT    NOT NULL DEFAULT '{}',
    state            TEXT    NOT NULL DEFAULT 'queued',
    conclusion       TEXT,
    error            TEXT,
    branch           TEXT,
    head_sha         TEXT,
    pr_number        INTEGER,
    pr_url           TEXT,
    check_run_id     INTEGER,
    comment_id       INTEGER,
    attempts         INTEGER NOT NULL DEFAULT 0,
    created_at       REAL    NOT NULL,
    started_at       REAL,
    finished_at      REAL,
    lease_owner      TEXT,
    lease_expires_at REAL,
    tokens_input     INTEGER NOT NULL DEFAULT 0,
    tokens_output    INTEGER NOT NULL DEFAULT 0,
    cost             REAL    NOT NULL DEFAULT 0,
    files_changed    TEXT    NOT NULL DEFAULT '[]'
);
CREATE INDEX tickets_state ON tickets (state, id);
CREATE INDEX tickets_subject ON tickets (repository, number, state);

CREATE TABLE ticket_logs (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id INTEGER NOT NULL REFERENCES tickets (id),
    at        REAL    NOT NULL,
    kind      TEXT    NOT NULL,
    message   TEXT    NOT NULL
);
CREATE INDEX ticket_logs_ticket ON ticket_logs (ticket_id, id);
