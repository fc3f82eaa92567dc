-- The full session lifecycle (docs/lifecycle.md) and a log of every transition.
ALTER TABLE sessions DROP CONSTRAINT sessions_status_check;
ALTER TABLE sessions ADD CONSTRAINT sessions_status_check CHECK (status IN (
    'QUEUED', 'STARTING', 'RUNNING', 'PAUSING', 'PAUSED', 'CANCELLING',
    'COMPLETED', 'FAILED', 'CANCELLED'));

-- The trainer attempt the status belongs to, and the workflow's sequence number of the newest
-- transition applied: an older transition, delivered late, never overwrites a newer one.
ALTER TABLE sessions ADD COLUMN attempt    integer NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN status_seq integer NOT NULL DEFAULT 0;

CREATE INDEX sessions_open_idx ON sessions (updated_at)
    WHERE status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED');

-- One row per transition. event_id is minted by whoever decides the transition (the workflow,
-- or the API's reconciler), so a retried write stores it once.
CREATE TABLE session_events (
    id              bigserial   PRIMARY KEY,
    event_id        uuid        NOT NULL UNIQUE,
    session_id      uuid        NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    at              timestamptz NOT NULL DEFAULT now(),
    status          text        NOT NULL,
    previous_status text,
    cause           text        NOT NULL,
    attempt         integer     NOT NULL DEFAULT 0,
    message         text
);

CREATE INDEX session_events_session_idx ON session_events (session_id, id);
