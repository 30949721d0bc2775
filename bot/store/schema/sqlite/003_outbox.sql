-- The notification outbox: one row per event and receiver URL, sent by the notifier.
-- ticket.queued rows are written in the transaction that makes the ticket.
CREATE TABLE notifications (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id       INTEGER NOT NULL REFERENCES tickets (id),
    url             TEXT    NOT NULL,
    event           TEXT    NOT NULL,
    body            TEXT    NOT NULL,
    created_at      REAL    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL    NOT NULL,
    delivered_at    REAL,
    last_error      TEXT
);
-- What is still to send, by when, and the chain of one ticket and receiver, in order.
CREATE INDEX notifications_due ON notifications (next_attempt_at, id) WHERE delivered_at IS NULL;
CREATE INDEX notifications_chain ON notifications (ticket_id, url, id) WHERE delivered_at IS NULL;
-- The oldest queued ticket, for the queue-age gauge, without a scan of every ticket.
CREATE INDEX tickets_queued_age ON tickets (created_at) WHERE state = 'queued'

