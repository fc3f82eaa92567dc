-- One row per training session; the API creates it, the workflow's activities move its status.
CREATE TABLE sessions (
    id               uuid PRIMARY KEY,
    workflow_id      text        NOT NULL UNIQUE,
    name             text        NOT NULL,
    description      text        NOT NULL DEFAULT '',
    request          jsonb       NOT NULL,
    status           text        NOT NULL CHECK (status IN ('QUEUED', 'RUNNING', 'COMPLETED', 'FAILED')),
    progress         double precision NOT NULL DEFAULT 0,
    latest_step      bigint,
    total_steps      bigint,
    latest_loss      double precision,
    latest_accuracy  double precision,
    learning_rate    double precision,
    final_model_path text,
    error            text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz
);

CREATE INDEX sessions_created_at_idx ON sessions (created_at DESC);

-- One row per trainer step; a resumed attempt overwrites the steps it repeats.
CREATE TABLE metrics (
    session_id     uuid             NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    step           bigint           NOT NULL,
    total_steps    bigint           NOT NULL,
    epoch          integer          NOT NULL,
    loss           double precision NOT NULL,
    accuracy       double precision,
    learning_rate  double precision,
    grad_norm      double precision,
    tokens_per_s   double precision,
    recorded_at    timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (session_id, step)
);

-- Checkpoints the trainer reported as written (atomically, so a row names a complete directory).
CREATE TABLE checkpoints (
    session_id  uuid        NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    step        bigint      NOT NULL,
    path        text        NOT NULL,
    bytes       bigint      NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (session_id, step)
);
