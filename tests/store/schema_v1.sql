-- The project schema of version 1 (anchoral before overlap), to test that such a project still opens.
CREATE TABLE schema_version (
    version    INTEGER PRIMARY KEY,
    applied_at TEXT NOT NULL
);
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL                                   -- JSON
);
CREATE TABLE label_set (
    class INTEGER PRIMARY KEY,                            -- the model's class id, in declared order
    name  TEXT NOT NULL UNIQUE CHECK (length(name) > 0)
);
CREATE TABLE items (
    position INTEGER PRIMARY KEY,                         -- row of the pool = row of its features
    id       TEXT NOT NULL UNIQUE CHECK (length(id) > 0),
    text     TEXT NOT NULL
);
CREATE TABLE heldout_items (
    position INTEGER PRIMARY KEY,
    id       TEXT NOT NULL UNIQUE CHECK (length(id) > 0),
    text     TEXT NOT NULL,
    class    INTEGER NOT NULL REFERENCES label_set(class)
);
CREATE TABLE rounds (
    round              INTEGER PRIMARY KEY,               -- 1, 2, ...
    strategy           TEXT NOT NULL,                     -- what selected the batch (after any fallback)
    requested_strategy TEXT NOT NULL,
    params             TEXT NOT NULL,                     -- JSON
    seed               INTEGER NOT NULL,
    batch_size         INTEGER NOT NULL,
    n_labeled          INTEGER NOT NULL,                  -- labels the model was trained on
    last_event         INTEGER,                           -- newest label event those labels include
    metrics            TEXT NOT NULL,                     -- JSON
    started_at         TEXT NOT NULL,
    finished_at        TEXT NOT NULL
);
CREATE TABLE round_items (
    round INTEGER NOT NULL REFERENCES rounds(round),
    rank  INTEGER NOT NULL,                               -- 0 = picked first
    item  INTEGER NOT NULL REFERENCES items(position),
    score REAL,
    PRIMARY KEY (round, rank),
    UNIQUE (round, item)
);
CREATE TABLE label_events (
    event      INTEGER PRIMARY KEY AUTOINCREMENT,
    item       INTEGER NOT NULL REFERENCES items(position),
    class      INTEGER REFERENCES label_set(class),       -- NULL: the label was withdrawn (undo)
    annotator  TEXT NOT NULL,
    source     TEXT NOT NULL,                             -- init | web | undo | import | label-studio
    session    TEXT,                                      -- web session that made it, for undo
    round      INTEGER REFERENCES rounds(round),          -- batch the item was in, if any
    created_at TEXT NOT NULL,
    superseded INTEGER NOT NULL DEFAULT 0 CHECK (superseded IN (0, 1))
);
-- At most one current event per item: a label can never be counted twice.
CREATE UNIQUE INDEX label_events_current ON label_events(item) WHERE superseded = 0;
CREATE INDEX label_events_by_session ON label_events(session, event);
CREATE VIEW current_labels AS
    SELECT item, class, annotator, source, session, created_at, event
    FROM label_events WHERE superseded = 0 AND class IS NOT NULL;
CREATE TABLE leases (
    item       INTEGER PRIMARY KEY REFERENCES items(position),   -- one holder per item
    session    TEXT NOT NULL,
    expires_at REAL NOT NULL,                             -- unix time
    reopened   INTEGER NOT NULL DEFAULT 0                 -- 1: handed back by undo, shown even if labeled
);
CREATE INDEX leases_by_session ON leases(session);
CREATE TABLE skips (
    session    TEXT NOT NULL,
    round      INTEGER NOT NULL REFERENCES rounds(round),
    item       INTEGER NOT NULL REFERENCES items(position),
    skipped_at REAL NOT NULL,
    PRIMARY KEY (session, round, item)
);
