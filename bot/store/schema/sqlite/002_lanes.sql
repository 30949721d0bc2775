-- A ticket's lane: one run at a time per issue or PR, none for control tickets (cancel, help).
ALTER TABLE tickets ADD COLUMN lane TEXT;
UPDATE tickets SET lane = repository || '#' || number WHERE kind NOT IN ('cancel', 'help');
CREATE INDEX tickets_lane ON tickets (lane, state);
-- Who asked to stop a running ticket (its worker polls for this).
ALTER TABLE tickets ADD COLUMN cancel_requested_by TEXT
;
-- A bare request (label, or the command with no new instructions): joins another one.
ALTER TABLE tickets ADD COLUMN bare INTEGER NOT NULL DEFAULT 0
