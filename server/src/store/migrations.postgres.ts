/**
 * The Postgres store's schema, as an append-only list of migrations, numbered as SQLite's are: version N
 * holds the same tables on both engines. The `schema_version` table records each one that has run. Never
 * edit a migration that has shipped: add the next one.
 *
 * Times are epoch milliseconds in BIGINT. JSON columns are JSONB, so a bad write fails at once. Ids and
 * keys compare byte by byte (`COLLATE "C"`), as they do in SQLite, so pages and prefixes are the same on
 * both engines whatever the database's locale.
 */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE settings (
    key   TEXT COLLATE "C" PRIMARY KEY,
    value TEXT NOT NULL
  );

  CREATE TABLE agents (
    id               TEXT COLLATE "C" PRIMARY KEY,
    name             TEXT NOT NULL,
    email            TEXT NOT NULL,
    password_hash    TEXT NOT NULL,
    pools            JSONB NOT NULL CHECK (jsonb_typeof(pools) = 'array'),
    roles            JSONB NOT NULL CHECK (jsonb_typeof(roles) = 'array'),
    last_assigned_at BIGINT
  );
  -- One account per email, whatever its case; also what a login looks up.
  CREATE UNIQUE INDEX agents_by_email ON agents (lower(email));
  -- Whether any account serves a pool is answered from this index, not by reading every account.
  CREATE INDEX agents_by_pool ON agents USING GIN (pools);

  CREATE TABLE requests (
    id           TEXT COLLATE "C" PRIMARY KEY,
    visitor_id   TEXT NOT NULL,
    visitor_name TEXT NOT NULL,
    pool         TEXT NOT NULL,
    state        TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    ended_at     BIGINT,
    end_reason   TEXT
  );

  CREATE TABLE calls (
    id             TEXT COLLATE "C" PRIMARY KEY,
    request_id     TEXT COLLATE "C" NOT NULL REFERENCES requests (id),
    visitor_id     TEXT NOT NULL,
    visitor_name   TEXT NOT NULL,
    agent_id       TEXT COLLATE "C" NOT NULL REFERENCES agents (id),
    pool           TEXT NOT NULL,
    state          TEXT NOT NULL,
    started_at     BIGINT NOT NULL,
    connected_at   BIGINT,
    ended_at       BIGINT,
    end_reason     TEXT,
    total_pause_ms BIGINT NOT NULL DEFAULT 0 CHECK (total_pause_ms >= 0)
  );
  -- Call history is read newest first, per agent or for everyone; the id breaks ties in the same ms.
  CREATE INDEX calls_by_start ON calls (started_at DESC, id DESC);
  CREATE INDEX calls_by_agent ON calls (agent_id, started_at DESC, id DESC);
  CREATE INDEX calls_by_request ON calls (request_id);

  CREATE TABLE call_events (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    call_id    TEXT COLLATE "C" REFERENCES calls (id),
    request_id TEXT COLLATE "C" NOT NULL REFERENCES requests (id),
    actor      TEXT NOT NULL CHECK (actor IN ('routing', 'callSession', 'server')),
    type       TEXT NOT NULL,
    from_state TEXT,
    to_state   TEXT,
    cause      TEXT,
    detail     JSONB,
    at         BIGINT NOT NULL
  );
  CREATE INDEX call_events_by_call ON call_events (call_id, id) WHERE call_id IS NOT NULL;
  CREATE INDEX call_events_by_request ON call_events (request_id, id);

  CREATE TABLE telemetry (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    call_id     TEXT COLLATE "C" NOT NULL REFERENCES calls (id),
    kind        TEXT NOT NULL CHECK (kind IN ('disconnection', 'reconnection-attempt')),
    leg         TEXT NOT NULL CHECK (leg IN ('agent', 'visitor')),
    at          BIGINT NOT NULL,
    duration_ms BIGINT CHECK (duration_ms IS NULL OR duration_ms >= 0),
    outcome     TEXT CHECK (outcome IS NULL OR outcome IN ('recovered', 'failed')),
    cause       TEXT,
    -- An attempt always has a duration and an outcome; a disconnection never has either.
    CHECK ((kind = 'reconnection-attempt') = (duration_ms IS NOT NULL AND outcome IS NOT NULL)),
    CHECK (kind = 'reconnection-attempt' OR (duration_ms IS NULL AND outcome IS NULL))
  );
  CREATE INDEX telemetry_by_call ON telemetry (call_id, id);

  CREATE TABLE actor_snapshots (
    actor_id   TEXT COLLATE "C" PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('routing', 'callSession')),
    request_id TEXT COLLATE "C" NOT NULL REFERENCES requests (id),
    call_id    TEXT COLLATE "C" REFERENCES calls (id),
    snapshot   JSONB NOT NULL,
    updated_at BIGINT NOT NULL
  );
  `,
  // Tokens revoked before their expiry (a logout). A row is needed only until the token would have expired
  // anyway, so rows past `expires_at` are purged.
  `
  CREATE TABLE revoked_tokens (
    jti        TEXT COLLATE "C" PRIMARY KEY,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT NOT NULL
  );
  CREATE INDEX revoked_tokens_by_expiry ON revoked_tokens (expires_at);
  `,
  // Ownership fences, and the messages a snapshot's step sends, kept with the snapshot.
  `
  CREATE TABLE request_fences (
    request_id TEXT COLLATE "C" PRIMARY KEY,
    token      BIGINT NOT NULL
  );
  ALTER TABLE actor_snapshots
    ADD COLUMN outbox JSONB NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(outbox) = 'array');
  `,
];
