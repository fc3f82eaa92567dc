-- Machine samples of a session's trainer (its `system` events, about every 30 s): the rank-0
-- process's CPU and memory, the machine's disk and network counters, and each GPU. A sample is
-- numbered within its attempt, so a retried write stores it once.
CREATE TABLE system_metrics (
    session_id        uuid        NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    attempt           integer     NOT NULL,
    sample            integer     NOT NULL,
    step              bigint      NOT NULL,
    cpu_percent       double precision,
    rss_bytes         bigint,
    disk_read_bytes   bigint,
    disk_write_bytes  bigint,
    net_sent_bytes    bigint,
    net_recv_bytes    bigint,
    gpus              jsonb       NOT NULL DEFAULT '[]',
    recorded_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (session_id, attempt, sample)
);

-- DiLoCo outer steps (the trainer's `sync` events); a resumed attempt overwrites the ones it repeats.
CREATE TABLE sync_events (
    session_id    uuid             NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    outer_step    bigint           NOT NULL,
    step          bigint           NOT NULL,
    participants  integer          NOT NULL,
    bytes         bigint           NOT NULL,
    seconds       double precision NOT NULL,
    recorded_at   timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (session_id, outer_step)
);
