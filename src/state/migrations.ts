/**
 * Schema migrations, applied in order; `PRAGMA user_version` records how many have run. Never edit a
 * migration that has shipped: add a new one.
 */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE images (
    id            INTEGER PRIMARY KEY,
    name          TEXT    NOT NULL,
    version       INTEGER NOT NULL,
    digest        TEXT    NOT NULL,
    config_digest TEXT    NOT NULL,
    build_key     TEXT    NOT NULL,
    parent_digest TEXT,
    base          TEXT    NOT NULL,
    git_commit    TEXT,
    created_at    TEXT    NOT NULL,
    size          INTEGER NOT NULL,
    packages      TEXT    NOT NULL DEFAULT '[]',
    status        TEXT    NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'deprecated', 'revoked')),
    status_reason TEXT,
    UNIQUE (name, version)
  );
  CREATE INDEX images_by_key ON images (name, build_key);
  CREATE INDEX images_by_digest ON images (digest);

  CREATE TABLE layer_cache (
    key        TEXT PRIMARY KEY,
    digest     TEXT    NOT NULL,
    diff_id    TEXT    NOT NULL,
    size       INTEGER NOT NULL,
    created_at TEXT    NOT NULL
  );

  CREATE TABLE base_cache (
    key        TEXT PRIMARY KEY,
    layers     TEXT NOT NULL,
    config     TEXT NOT NULL,
    packages   TEXT NOT NULL,
    parent_digest TEXT,
    created_at TEXT NOT NULL
  );

  CREATE TABLE events (
    id      INTEGER PRIMARY KEY,
    at      TEXT NOT NULL,
    kind    TEXT NOT NULL,
    subject TEXT NOT NULL,
    actor   TEXT NOT NULL,
    data    TEXT NOT NULL DEFAULT '{}'
  );
  CREATE TRIGGER events_append_only_update BEFORE UPDATE ON events
    BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
  CREATE TRIGGER events_append_only_delete BEFORE DELETE ON events
    BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
  `,
  `
  CREATE TABLE releases (
    id            INTEGER PRIMARY KEY,
    service       TEXT    NOT NULL,
    environment   TEXT    NOT NULL,
    number        INTEGER NOT NULL,
    image_name    TEXT    NOT NULL,
    image_version INTEGER NOT NULL,
    image_digest  TEXT    NOT NULL,
    config_digest TEXT    NOT NULL,
    config        TEXT    NOT NULL,
    status        TEXT    NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'active', 'superseded', 'failed', 'rolled-back')),
    reason        TEXT,
    created_at    TEXT    NOT NULL,
    UNIQUE (service, number)
  );
  CREATE INDEX releases_by_env ON releases (environment, service, number);

  CREATE TABLE instances (
    id             TEXT PRIMARY KEY,
    service        TEXT    NOT NULL,
    environment    TEXT    NOT NULL,
    release_number INTEGER NOT NULL,
    provider       TEXT    NOT NULL,
    phase          TEXT    NOT NULL
                   CHECK (phase IN ('creating', 'starting', 'healthy', 'draining', 'stopping', 'destroyed', 'failed')),
    host_port      INTEGER,
    reason         TEXT,
    created_at     TEXT    NOT NULL,
    updated_at     TEXT    NOT NULL
  );
  CREATE INDEX instances_by_service ON instances (environment, service, phase);

  CREATE TABLE locks (
    name        TEXT PRIMARY KEY,
    holder      TEXT    NOT NULL,
    pid         INTEGER NOT NULL,
    host        TEXT    NOT NULL,
    acquired_at TEXT    NOT NULL
  );
  `,
  `
  CREATE TABLE hotfixes (
    id          INTEGER PRIMARY KEY,
    instance    TEXT    NOT NULL,
    environment TEXT    NOT NULL,
    service     TEXT    NOT NULL,
    actor       TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    command     TEXT    NOT NULL,
    status      TEXT    NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'recorded', 'interrupted')),
    exit_code   INTEGER,
    changes     TEXT    NOT NULL DEFAULT '[]',
    created_at  TEXT    NOT NULL,
    expires_at  TEXT    NOT NULL
  );
  CREATE INDEX hotfixes_by_instance ON hotfixes (instance);
  `,
  `
  ALTER TABLE releases ADD COLUMN promoted_from TEXT;
  CREATE TABLE pins (
    digest     TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    version    INTEGER NOT NULL,
    reason     TEXT NOT NULL,
    created_at TEXT NOT NULL
  );
  `,
  `
  ALTER TABLE images ADD COLUMN collected_at TEXT;
  `,
  `
  CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
  );
  `,
  `
  CREATE TABLE health_probes (
    instance TEXT PRIMARY KEY,
    at       TEXT    NOT NULL,
    ok       INTEGER NOT NULL,
    detail   TEXT    NOT NULL,
    failures INTEGER NOT NULL
  );
  CREATE TABLE restarts (
    id          INTEGER PRIMARY KEY,
    environment TEXT    NOT NULL,
    service     TEXT    NOT NULL,
    release     INTEGER NOT NULL,
    instance    TEXT    NOT NULL,
    cause       TEXT    NOT NULL,
    at          TEXT    NOT NULL
  );
  CREATE INDEX restarts_by_service ON restarts (environment, service, at);
  `,
  // several build keys can give one digest (one version per digest), and a key records its inputs so a
  // plan can name what changed since a version was built
  `
  CREATE TABLE build_keys (
    name       TEXT    NOT NULL,
    build_key  TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    inputs     TEXT,
    created_at TEXT    NOT NULL,
    PRIMARY KEY (name, build_key)
  );
  CREATE INDEX build_keys_by_version ON build_keys (name, version);
  INSERT OR IGNORE INTO build_keys (name, build_key, version, created_at)
    SELECT name, build_key, version, created_at FROM images ORDER BY version DESC;
  `,
  // API bearer tokens: only the sha256 of each token is kept (the token itself is shown once, at creation)
  `
  CREATE TABLE tokens (
    name         TEXT PRIMARY KEY,
    hash         TEXT NOT NULL UNIQUE,
    scope        TEXT NOT NULL CHECK (scope IN ('read', 'write')),
    created_at   TEXT NOT NULL,
    revoked_at   TEXT,
    last_used_at TEXT
  );
  `,
]
