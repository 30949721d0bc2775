-- A ticket's lane: one run at a time per issue or PR, none for control tickets (cancel, help).
ALTER TABLE tickets ADD COLUMN lane TEXT;
UPDATE tickets SET lane = repository || '#' || number WHERE kind NOT IN ('cancel', 'help');
CREATE INDEX tickets_lane ON tickets (lane, state);
-- The backstop under claim now keys on the lane (NULL lanes never conflict).
DROP INDEX tickets_one_running;
CREATE UNIQUE INDEX tickets_one_running ON tickets (lane) WHERE state = 'running';
-- Who asked to stop a running ticket (its worker polls for this).
ALTER TABLE tickets ADD COLUMN cancel_requested_by TEXT;
-- A bare request (label, or the command with no new instructions): joins another one.
ALTER TABLE tickets ADD COLUMN bare BOOLEAN NOT NULL DEFAULT FALSE;
