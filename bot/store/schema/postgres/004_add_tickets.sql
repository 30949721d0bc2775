-- A batch of deliveries in one statement (PostgresStore.add_many): one round trip for all.
-- One array per column, element i of each being delivery i; for each delivery, in order,
-- the rule SQLiteStore.add_many follows too:
--   - a bare request (label, or the command without new instructions) joins the bare
--     ticket of its lane still queued or running, made after joinable_since (the oldest
--     such), unless its delivery has its own ticket already: then that one;
--   - else a new ticket, unless the delivery is stored already (ON CONFLICT waits for a
--     concurrent insert of it to commit; the next statement, with a fresh snapshot under
--     READ COMMITTED, then finds that row): a delivery is never stored twice.
-- Each statement sees the rows of those before it, so the deliveries of one batch dedupe
-- and coalesce with each other too. Returns one row per delivery: its position (from 1),
-- its ticket, and whether the ticket is new. The caller's transaction is the batch's.
-- This file is sent whole (the runner does not split it), so the body's ; are safe.
CREATE OR REPLACE FUNCTION autocode_add_tickets(
    delivery_ids     TEXT[],
    events           TEXT[],
    kinds            TEXT[],
    repositories     TEXT[],
    clone_urls       TEXT[],
    installation_ids BIGINT[],
    numbers          BIGINT[],
    pull_requests    BOOLEAN[],
    titles           TEXT[],
    bodies           TEXT[],
    requesters       TEXT[],
    instruction_sets TEXT[],
    contexts         TEXT[],
    lanes            TEXT[],
    bares            BOOLEAN[],
    made_at          DOUBLE PRECISION,
    joinable_since   DOUBLE PRECISION
) RETURNS TABLE (item INTEGER, ticket_id BIGINT, created BOOLEAN)
LANGUAGE plpgsql VOLATILE AS $add_tickets$
DECLARE
    joined BIGINT;
BEGIN
    FOR i IN 1 .. coalesce(array_length(delivery_ids, 1), 0) LOOP
        item := i;
        ticket_id := NULL;
        IF bares[i] THEN
            SELECT t.id INTO joined FROM tickets t
            WHERE t.lane = lanes[i] AND t.bare AND t.state IN ('queued', 'running')
              AND t.created_at > joinable_since
            ORDER BY t.id LIMIT 1;
            IF joined IS NOT NULL THEN
                SELECT t.id INTO ticket_id FROM tickets t WHERE t.delivery_id = delivery_ids[i];
                ticket_id := coalesce(ticket_id, joined);
                created := FALSE;
                RETURN NEXT;
                CONTINUE;
            END IF;
        END IF;
        INSERT INTO tickets AS t (delivery_id, event, kind, repository, clone_url,
            installation_id, number, is_pull_request, title, body, requested_by, instructions,
            context, state, created_at, lane, bare)
        VALUES (delivery_ids[i], events[i], kinds[i], repositories[i], clone_urls[i],
            installation_ids[i], numbers[i], pull_requests[i], titles[i], bodies[i],
            requesters[i], instruction_sets[i], contexts[i], 'queued', made_at, lanes[i],
            bares[i])
        ON CONFLICT (delivery_id) DO NOTHING
        RETURNING t.id INTO ticket_id;
        created := ticket_id IS NOT NULL;
        IF NOT created THEN
            SELECT t.id INTO ticket_id FROM tickets t WHERE t.delivery_id = delivery_ids[i];
            IF ticket_id IS NULL THEN
                RAISE EXCEPTION 'delivery % conflicted but cannot be found', delivery_ids[i];
            END IF;
        END IF;
        RETURN NEXT;
    END LOOP;
END
$add_tickets$;
