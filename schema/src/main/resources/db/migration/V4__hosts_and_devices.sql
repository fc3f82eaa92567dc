-- The inventory: worker hosts and the devices they offer (docs/placement.md). A host is
-- registered by its worker at start and kept fresh every few seconds; one whose last_seen is older
-- than the heartbeat timeout is gone.
CREATE TABLE hosts (
    id          text        PRIMARY KEY,
    cpu_slots   integer     NOT NULL CHECK (cpu_slots > 0),
    labels      jsonb       NOT NULL DEFAULT '{}',
    worker_pid  bigint      NOT NULL,
    started_at  timestamptz NOT NULL,
    last_seen   timestamptz NOT NULL
);

-- NVIDIA GPUs found by the worker (nvidia-smi), or device ids declared with COTRAIN_GPUS.
CREATE TABLE devices (
    host_id       text    NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    device_index  integer NOT NULL CHECK (device_index >= 0),
    name          text    NOT NULL,
    memory_bytes  bigint,
    PRIMARY KEY (host_id, device_index)
);
