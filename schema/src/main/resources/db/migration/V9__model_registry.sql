-- The model registry (docs/models.md): a completed session's export becomes the next version of
-- the model it names; each version is evaluated, and may carry aliases.

-- A session evaluates its export between training and COMPLETED.
ALTER TABLE sessions DROP CONSTRAINT sessions_status_check;
ALTER TABLE sessions ADD CONSTRAINT sessions_status_check CHECK (status IN (
    'QUEUED', 'STARTING', 'RUNNING', 'PAUSING', 'PAUSED', 'CANCELLING', 'EVALUATING',
    'COMPLETED', 'FAILED', 'CANCELLED'));

-- A model is named by its first session; its name is global and it belongs to that owner.
CREATE TABLE models (
    name          text        PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$'),
    owner         text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    next_version  integer     NOT NULL DEFAULT 1
);

CREATE TABLE model_versions (
    model             text        NOT NULL REFERENCES models (name) ON DELETE CASCADE,
    version           integer     NOT NULL CHECK (version > 0),
    session_id        uuid        NOT NULL UNIQUE REFERENCES sessions (id),
    path              text        NOT NULL,
    config_hash       text        NOT NULL,
    data_fingerprint  text,
    -- The session's held-out split the version is evaluated on as the set 'validation'.
    validation_path   text,
    parameters        bigint,
    files             jsonb       NOT NULL,
    bytes             bigint      NOT NULL,
    -- PENDING until the session's evaluation stored its result; FAILED keeps the model.
    evaluation        text        NOT NULL DEFAULT 'PENDING'
                                  CHECK (evaluation IN ('PENDING', 'EVALUATED', 'FAILED')),
    evaluation_error  text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (model, version)
);

-- An alias names one version of a model; a version an alias points at cannot be deleted.
CREATE TABLE model_aliases (
    model       text        NOT NULL,
    alias       text        NOT NULL,
    version     integer     NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (model, alias),
    FOREIGN KEY (model, version) REFERENCES model_versions (model, version)
);

-- Named evaluation sets: a text file under the storage root's datasets/, fixed by its hash.
CREATE TABLE eval_sets (
    name        text        PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$'),
    path        text        NOT NULL,
    sha256      text        NOT NULL,
    bytes       bigint      NOT NULL,
    owner       text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- One evaluation of a version on a set; 'validation' is the session's own held-out split.
CREATE TABLE evaluations (
    model         text             NOT NULL,
    version       integer          NOT NULL,
    eval_set      text             NOT NULL,
    loss          double precision NOT NULL,
    perplexity    double precision NOT NULL,
    accuracy      double precision,
    evaluated_at  timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (model, version, eval_set),
    FOREIGN KEY (model, version) REFERENCES model_versions (model, version) ON DELETE CASCADE
);

-- Retention by quality: each checkpoint's eval loss, and when the trainer deleted it.
ALTER TABLE checkpoints ADD COLUMN eval_loss double precision;
ALTER TABLE checkpoints ADD COLUMN deleted_at timestamptz;
