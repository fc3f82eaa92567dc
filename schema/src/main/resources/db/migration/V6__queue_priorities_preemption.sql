-- Scheduling (docs/placement.md). A session's priority (higher goes first; it may be changed while
-- the session lives), its owner (whose share fair share counts) and whether it asks to be packed
-- onto the busiest host that fits rather than spread onto the least loaded one.
ALTER TABLE sessions ADD COLUMN priority integer NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN owner    text    NOT NULL DEFAULT 'anonymous';
ALTER TABLE sessions ADD COLUMN pack     boolean NOT NULL DEFAULT false;

-- Sessions waiting for a placement. The allocator orders them (priority, then the owner's share,
-- then creation time) and writes each one's position and the reason it waits on every pass.
CREATE TABLE queue (
    session_id     uuid        PRIMARY KEY REFERENCES sessions (id) ON DELETE CASCADE,
    attempt        integer     NOT NULL,
    gpus_per_node  integer     NOT NULL CHECK (gpus_per_node > 0),
    since          timestamptz NOT NULL DEFAULT now(),
    position       integer,
    reason         text
);

-- A running placement chosen to be preempted for a waiting session of higher priority: its
-- devices count as that session's once its trainer has checkpointed and released them.
ALTER TABLE placements ADD COLUMN preempted_for uuid REFERENCES sessions (id) ON DELETE SET NULL;
