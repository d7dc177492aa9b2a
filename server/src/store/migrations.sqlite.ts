/**
 * The SQLite store's schema, as an append-only list of migrations. `PRAGMA user_version` records how many have
 * run, so a database written by an older server is brought forward on open. Never edit a migration that
 * has shipped: add the next one.
 *
 * Times are epoch milliseconds. JSON columns are checked with `json_valid` so a bad write fails at once
 * instead of when someone reads it back.
 */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
  ) STRICT;

  CREATE TABLE agents (
    id               TEXT PRIMARY KEY,
    name             TEXT NOT NULL,
    email            TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash    TEXT NOT NULL,
    pools            TEXT NOT NULL CHECK (json_valid(pools) AND json_type(pools) = 'array'),
    roles            TEXT NOT NULL CHECK (json_valid(roles) AND json_type(roles) = 'array'),
    last_assigned_at INTEGER
  ) STRICT;

  CREATE TABLE requests (
    id           TEXT PRIMARY KEY,
    visitor_id   TEXT NOT NULL,
    visitor_name TEXT NOT NULL,
    pool         TEXT NOT NULL,
    state        TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    ended_at     INTEGER,
    end_reason   TEXT
  ) STRICT;

  CREATE TABLE calls (
    id             TEXT PRIMARY KEY,
    request_id     TEXT NOT NULL REFERENCES requests (id),
    visitor_id     TEXT NOT NULL,
    visitor_name   TEXT NOT NULL,
    agent_id       TEXT NOT NULL REFERENCES agents (id),
    pool           TEXT NOT NULL,
    state          TEXT NOT NULL,
    started_at     INTEGER NOT NULL,
    connected_at   INTEGER,
    ended_at       INTEGER,
    end_reason     TEXT,
    total_pause_ms INTEGER NOT NULL DEFAULT 0 CHECK (total_pause_ms >= 0)
  ) STRICT;
  -- Call history is read newest first, per agent or for everyone; the id breaks ties in the same ms.
  CREATE INDEX calls_by_start ON calls (started_at DESC, id DESC);
  CREATE INDEX calls_by_agent ON calls (agent_id, started_at DESC, id DESC);
  CREATE INDEX calls_by_request ON calls (request_id);

  CREATE TABLE call_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id    TEXT REFERENCES calls (id),
    request_id TEXT NOT NULL REFERENCES requests (id),
    actor      TEXT NOT NULL CHECK (actor IN ('routing', 'callSession', 'server')),
    type       TEXT NOT NULL,
    from_state TEXT,
    to_state   TEXT,
    cause      TEXT,
    detail     TEXT CHECK (detail IS NULL OR json_valid(detail)),
    at         INTEGER NOT NULL
  ) STRICT;
  CREATE INDEX call_events_by_call ON call_events (call_id, id) WHERE call_id IS NOT NULL;
  CREATE INDEX call_events_by_request ON call_events (request_id, id);

  CREATE TABLE telemetry (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id     TEXT NOT NULL REFERENCES calls (id),
    kind        TEXT NOT NULL CHECK (kind IN ('disconnection', 'reconnection-attempt')),
    leg         TEXT NOT NULL CHECK (leg IN ('agent', 'visitor')),
    at          INTEGER NOT NULL,
    duration_ms INTEGER CHECK (duration_ms IS NULL OR duration_ms >= 0),
    outcome     TEXT CHECK (outcome IS NULL OR outcome IN ('recovered', 'failed')),
    cause       TEXT,
    -- An attempt always has a duration and an outcome; a disconnection never has either.
    CHECK ((kind = 'reconnection-attempt') = (duration_ms IS NOT NULL AND outcome IS NOT NULL)),
    CHECK (kind = 'reconnection-attempt' OR (duration_ms IS NULL AND outcome IS NULL))
  ) STRICT;
  CREATE INDEX telemetry_by_call ON telemetry (call_id, id);

  CREATE TABLE actor_snapshots (
    actor_id   TEXT PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('routing', 'callSession')),
    request_id TEXT NOT NULL REFERENCES requests (id),
    call_id    TEXT REFERENCES calls (id),
    snapshot   TEXT NOT NULL CHECK (json_valid(snapshot)),
    updated_at INTEGER NOT NULL
  ) STRICT;
  `,
  // Tokens revoked before their expiry (a logout). A row is needed only until the token would have expired
  // anyway, so rows past `expires_at` are purged.
  `
  CREATE TABLE revoked_tokens (
    jti        TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER NOT NULL
  ) STRICT;
  CREATE INDEX revoked_tokens_by_expiry ON revoked_tokens (expires_at);
  `,
  // Ownership fences, and the messages a snapshot's step sends, kept with the snapshot.
  `
  CREATE TABLE request_fences (
    request_id TEXT PRIMARY KEY,
    token      INTEGER NOT NULL
  ) STRICT;
  ALTER TABLE actor_snapshots
    ADD COLUMN outbox TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(outbox) AND json_type(outbox) = 'array');
  `,
];
