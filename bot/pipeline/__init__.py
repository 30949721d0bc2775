"""The work side: a claimed ticket through its run to the concluded check run.

Read top to bottom: `worker` (claim, lease, the dispatch table) → `run`
(the stages in order) → `agent`, `commands`, `publish` (each stage) →
`report` (what GitHub and the ledger are told). `outcomes` and `spec` are
the pure decisions; `ports` names what the stages need from the world;
`control` and `waiting` handle the tickets that act on other tickets.
"""
