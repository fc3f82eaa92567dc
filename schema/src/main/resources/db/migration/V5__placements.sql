-- Where each session's current attempt runs (docs/placement.md). A session holds at most one
-- placement; a device is held by at most one session: the primary key of held_devices says so,
-- whatever the code does.
CREATE TABLE placements (
    session_id  uuid        PRIMARY KEY REFERENCES sessions (id) ON DELETE CASCADE,
    attempt     integer     NOT NULL,
    host_id     text        NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    cpu_slot    boolean     NOT NULL,
    placed_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE held_devices (
    host_id       text    NOT NULL,
    device_index  integer NOT NULL,
    session_id    uuid    NOT NULL REFERENCES placements (session_id) ON DELETE CASCADE,
    PRIMARY KEY (host_id, device_index),
    FOREIGN KEY (host_id, device_index) REFERENCES devices (host_id, device_index) ON DELETE CASCADE
);
