"""The SQLite file of a labeling project: schema, connection settings, safe opening.

One file, ``project.sqlite``, in WAL mode with foreign keys on and ``synchronous=FULL``:
every state change is one transaction, so a process killed at any instant leaves
the file at the last committed transaction. The file identifies itself with
``PRAGMA application_id`` and records its schema version in ``schema_version``;
opening refuses a file that is not SQLite, not an anchoral project, corrupted or
written by a newer schema, and brings a file of an older schema up to date
(``MIGRATIONS``: one transaction per version step, so an interrupted migration
leaves the file at the version before it).
"""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from anchoral.errors import AnchoralError

PROJECT_FILE = "project.sqlite"
APPLICATION_ID = 0x414E4352  # "ANCR": marks the file as an anchoral project
SCHEMA_VERSION = 2
BUSY_TIMEOUT_SECONDS = 30.0
SQLITE_HEADER = b"SQLite format 3\x00"

# An item's label, the one training and exports use: its own current label (a web label
# of an ordinary item, an import, a review's resolution), else, for an overlap item, the
# label its labelers gave once at least ``raters`` of them labeled it and all agree. An
# overlap item whose labelers disagree has no label until a reviewer resolves it.
CURRENT_LABELS_VIEW = """CREATE VIEW current_labels AS
    SELECT item, class, annotator, source, session, created_at, event
    FROM label_events WHERE superseded = 0 AND track = '' AND class IS NOT NULL
    UNION ALL
    SELECT o.item, min(e.class), group_concat(e.annotator, ', '), 'agreement', NULL, max(e.created_at), max(e.event)
    FROM overlap_items o
    JOIN label_events e ON e.item = o.item AND e.track != '' AND e.superseded = 0 AND e.class IS NOT NULL
    WHERE o.item NOT IN (SELECT item FROM label_events WHERE superseded = 0 AND track = '' AND class IS NOT NULL)
    GROUP BY o.item
    HAVING count(*) >= o.raters AND min(e.class) = max(e.class)"""
# At most one current event per item and track: a label can never be counted twice.
CURRENT_LABEL_INDEX = "CREATE UNIQUE INDEX label_events_current ON label_events(item, track) WHERE superseded = 0"
OVERLAP_ITEMS_TABLE = """CREATE TABLE overlap_items (
    item   INTEGER PRIMARY KEY REFERENCES items(position),
    raters INTEGER NOT NULL CHECK (raters >= 2),          -- distinct labelers the item is shown to
    round  INTEGER NOT NULL REFERENCES rounds(round)      -- the round that chose it
)"""
LEASES_TABLE = """CREATE TABLE leases (
    item       INTEGER NOT NULL REFERENCES items(position),
    slot       INTEGER NOT NULL DEFAULT 0,                -- always 0 unless the item is an overlap item
    session    TEXT NOT NULL,
    annotator  TEXT,                                      -- who the session labels as
    expires_at REAL NOT NULL,                             -- unix time
    reopened   INTEGER NOT NULL DEFAULT 0,                -- 1: handed back by undo, shown even if labeled
    PRIMARY KEY (item, slot)                              -- one holder per item and slot
)"""
LEASES_INDEX = "CREATE INDEX leases_by_session ON leases(session)"

SCHEMA = f"""
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
    source     TEXT NOT NULL,                             -- init | web | undo | import | label-studio | review
    session    TEXT,                                      -- web session that made it, for undo
    round      INTEGER REFERENCES rounds(round),          -- batch the item was in, if any
    created_at TEXT NOT NULL,
    superseded INTEGER NOT NULL DEFAULT 0 CHECK (superseded IN (0, 1)),
    track      TEXT NOT NULL DEFAULT ''                   -- '' for the item's own label, a labeler's name
                                                          -- for that labeler's label of an overlap item
);
{CURRENT_LABEL_INDEX};
CREATE INDEX label_events_by_session ON label_events(session, event);
{OVERLAP_ITEMS_TABLE};
{CURRENT_LABELS_VIEW};
{LEASES_TABLE};
{LEASES_INDEX};
CREATE TABLE skips (
    session    TEXT NOT NULL,
    round      INTEGER NOT NULL REFERENCES rounds(round),
    item       INTEGER NOT NULL REFERENCES items(position),
    skipped_at REAL NOT NULL,
    PRIMARY KEY (session, round, item)
);
"""

MIGRATIONS: dict[int, tuple[str, ...]] = {
    2: (  # overlap: a label per labeler on overlap items (``track``), overlap items, several leases per item
        "ALTER TABLE label_events ADD COLUMN track TEXT NOT NULL DEFAULT ''",
        "DROP INDEX label_events_current",
        CURRENT_LABEL_INDEX,
        OVERLAP_ITEMS_TABLE,
        "DROP VIEW current_labels",
        CURRENT_LABELS_VIEW,
        "ALTER TABLE leases RENAME TO leases_v1",
        LEASES_TABLE,
        """INSERT INTO leases (item, slot, session, annotator, expires_at, reopened)
           SELECT item, 0, session, NULL, expires_at, reopened FROM leases_v1""",
        "DROP TABLE leases_v1",
        LEASES_INDEX,
    ),
}
"""The statements that bring a project from the version before each key to that version."""


class ProjectError(AnchoralError):
    """A project directory or its database cannot be used as asked."""


def utc_now() -> str:
    """The current time as an ISO 8601 UTC string with milliseconds."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def connect(path: Path, *, create: bool = False) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit, see ``write``)."""
    mode = "rwc" if create else "rw"
    connection = sqlite3.connect(
        f"file:{quote(str(path))}?mode={mode}",
        uri=True,
        timeout=BUSY_TIMEOUT_SECONDS,
        isolation_level=None,
        check_same_thread=False,
    )
    connection.row_factory = sqlite3.Row
    connection.execute("PRAGMA foreign_keys = ON")
    connection.execute("PRAGMA synchronous = FULL")
    return connection


@contextmanager
def write(connection: sqlite3.Connection):
    """One write transaction: taken with BEGIN IMMEDIATE (so concurrent writers queue
    instead of failing mid-way), committed on success, rolled back on any error."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield connection
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def create_schema(connection: sqlite3.Connection) -> None:
    """Create every table of the current schema (inside the caller's transaction)."""
    for statement in SCHEMA.split(";"):
        if statement.strip():
            connection.execute(statement)
    connection.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    connection.execute("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)", (SCHEMA_VERSION, utc_now()))


def open_database(path: Path, *, check_integrity: bool = True) -> sqlite3.Connection:
    """Open an existing project database after checking it is one we can use."""
    _check_header(path)
    try:
        connection = connect(path)
    except sqlite3.OperationalError as exc:
        raise ProjectError(f"cannot open {path}: {exc}") from exc
    except sqlite3.DatabaseError as exc:
        raise ProjectError(f"{path} is corrupted ({exc}); restore it from a backup") from exc
    try:
        _check_identity(connection, path, check_integrity)
        connection.execute("PRAGMA journal_mode = WAL")
    except sqlite3.OperationalError as exc:
        connection.close()
        raise ProjectError(f"cannot read {path}: {exc}") from exc
    except sqlite3.DatabaseError as exc:
        connection.close()
        raise ProjectError(f"{path} is corrupted ({exc}); restore it from a backup") from exc
    except BaseException:
        connection.close()
        raise
    return connection


def _check_header(path: Path) -> None:
    try:
        with open(path, "rb") as file:
            header = file.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise ProjectError(f"cannot read {path}: {exc.strerror}") from exc
    if header != SQLITE_HEADER:
        raise ProjectError(
            f"{path} is not a SQLite database (its first bytes are not the SQLite header); "
            "the file is corrupted or is not an anchoral project"
        )


def _check_identity(connection: sqlite3.Connection, path: Path, check_integrity: bool) -> None:
    application_id = connection.execute("PRAGMA application_id").fetchone()[0]
    if application_id != APPLICATION_ID:
        raise ProjectError(
            f"{path} is a SQLite database but not an anchoral project (application_id {application_id:#x}); "
            "create a project with `anchoral init`"
        )
    tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "schema_version" not in tables:
        raise ProjectError(f"{path} has no schema_version table; it is corrupted or not an anchoral project")
    version = connection.execute("SELECT max(version) FROM schema_version").fetchone()[0]
    if version is None:
        raise ProjectError(f"{path} records no schema version; it is corrupted")
    if version > SCHEMA_VERSION:
        raise ProjectError(
            f"{path} was written by a newer anchoral (project schema {version}; this version reads up to "
            f"{SCHEMA_VERSION}); upgrade anchoral to open it"
        )
    if version < SCHEMA_VERSION and any(step not in MIGRATIONS for step in range(version + 1, SCHEMA_VERSION + 1)):
        raise ProjectError(f"{path} has project schema {version}, which this anchoral cannot migrate")
    if check_integrity:
        problems = [row[0] for row in connection.execute("PRAGMA quick_check(5)")]
        if problems != ["ok"]:
            raise ProjectError(f"{path} is corrupted: {'; '.join(problems)}; restore it from a backup")
    if version < SCHEMA_VERSION:
        _migrate(connection, path, version)


def _migrate(connection: sqlite3.Connection, path: Path, version: int) -> None:
    """Bring the file from ``version`` to ``SCHEMA_VERSION``, one transaction per step; a
    step another process applied meanwhile is skipped."""
    for target in range(version + 1, SCHEMA_VERSION + 1):
        try:
            with write(connection):
                if connection.execute("SELECT max(version) FROM schema_version").fetchone()[0] >= target:
                    continue
                for statement in MIGRATIONS[target]:
                    connection.execute(statement)
                connection.execute("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)", (target, utc_now()))
        except sqlite3.OperationalError as exc:
            raise ProjectError(
                f"{path} has project schema {target - 1} and must be upgraded to schema {SCHEMA_VERSION} "
                f"before this anchoral can use it, but the upgrade failed: {exc}"
            ) from exc
