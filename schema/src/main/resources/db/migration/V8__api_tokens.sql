-- Bearer API tokens (docs/api.md). Only a SHA-256 hash of each token is kept: a token is 32 random
-- bytes, so a fast hash is enough, and the plain token is shown once, when it is created. A token
-- belongs to an owner; sessions created with it are that owner's. An admin token sees and controls
-- every session and manages tokens.
CREATE TABLE api_tokens (
    id          uuid        PRIMARY KEY,
    name        text        NOT NULL,
    owner       text        NOT NULL,
    admin       boolean     NOT NULL DEFAULT false,
    token_hash  text        NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
