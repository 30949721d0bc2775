-- A notification given up: its receiver kept failing for AUTOCODE_NOTIFY_GIVE_UP_HOURS.
-- A dead row is never sent again and, like a delivered one, no longer holds up the
-- later events of its ticket at that URL. Numbered 005 in both dialects, so version 5
-- means the same outbox everywhere (004 is PostgreSQL's batch function alone).
ALTER TABLE notifications ADD COLUMN dead_at REAL;
-- What is still to send: neither delivered nor given up.
DROP INDEX notifications_due;
DROP INDEX notifications_chain;
CREATE INDEX notifications_due ON notifications (next_attempt_at, id)
    WHERE delivered_at IS NULL AND dead_at IS NULL;
CREATE INDEX notifications_chain ON notifications (ticket_id, url, id)
    WHERE delivered_at IS NULL AND dead_at IS NULL
