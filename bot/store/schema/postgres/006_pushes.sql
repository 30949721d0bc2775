-- The commit a ticket's run pushed, written before the push: a check suite of that
-- commit can then never arrive before the bot knows the commit is its own. The bot's
-- follow-ups (failed checks, reviews) read a pull request's tickets and who pushed what.
ALTER TABLE tickets ADD COLUMN pushed_sha TEXT;
CREATE INDEX tickets_pushed ON tickets (repository, pushed_sha) WHERE pushed_sha IS NOT NULL;
CREATE INDEX tickets_pull ON tickets (repository, pr_number) WHERE pr_number IS NOT NULL;
