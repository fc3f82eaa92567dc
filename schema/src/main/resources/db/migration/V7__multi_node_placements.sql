-- Multi-node gangs (docs/placement.md). A placement has one node per host: node 0 runs on the
-- placement's host_id and holds the rendezvous (MASTER_ADDR = its host's address, MASTER_PORT =
-- master_port, chosen by the allocator for sessions of several nodes).
ALTER TABLE hosts ADD COLUMN address text;

CREATE TABLE placement_nodes (
    session_id  uuid    NOT NULL REFERENCES placements (session_id) ON DELETE CASCADE,
    node_rank   integer NOT NULL CHECK (node_rank >= 0),
    host_id     text    NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    cpu_slot    boolean NOT NULL,
    PRIMARY KEY (session_id, node_rank),
    UNIQUE (session_id, host_id)
);
INSERT INTO placement_nodes (session_id, node_rank, host_id, cpu_slot)
    SELECT session_id, 0, host_id, cpu_slot FROM placements;
ALTER TABLE placements DROP COLUMN cpu_slot;
ALTER TABLE placements ADD COLUMN master_port integer;

ALTER TABLE queue ADD COLUMN nodes integer NOT NULL DEFAULT 1 CHECK (nodes > 0);

-- Every node's machine samples, labelled by node.
ALTER TABLE system_metrics ADD COLUMN node integer NOT NULL DEFAULT 0;
ALTER TABLE system_metrics DROP CONSTRAINT system_metrics_pkey;
ALTER TABLE system_metrics ADD PRIMARY KEY (session_id, attempt, node, sample);
