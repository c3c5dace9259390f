"""The results store of a study's run directory: one SQLite file, append-only.

A finished run is written in one transaction (its row in ``runs`` and one row per
round in ``rounds``), so after a crash or ``kill -9`` a run is either wholly present
or absent: a rerun skips the present ones and redoes the rest. Rows are only ever
inserted; the primary key on ``run_id`` makes a second copy of a run impossible.

The reference panel (``anchoral.experiments.references``) is stored the same way, one
row per fit in ``reference_panel``, so a resumed study never refits it. Directories
written before that table existed read as having no panel, and gain the table when
their study is resumed.

Representations for the analyses after the runs (``anchoral.experiments.probing``) are kept
beside them: per benchmark, the frozen-encoder features of the pool (maps of the pool) and
the probing set (``benchmark_data``); per run, f_enc of the probing set at each checkpoint
(``representations``, written in the run's own transaction); per panel fit, f_enc of the
probing set (``panel_representations``). A directory written before these tables reads as
having none.

The file records ``format_version``; a directory written by another version, or a
non-empty directory that is not a run directory, is refused rather than mixed.
"""

from __future__ import annotations

import io
import json
import socket
import sqlite3
import time
from contextlib import closing
from pathlib import Path

import numpy as np
import pandas as pd

from anchoral.errors import AnchoralError
from anchoral.experiments.simulate import json_default

FORMAT_VERSION = 1
DB_NAME = "results.sqlite"
CONFIG_NAME = "config.toml"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    benchmark_label TEXT NOT NULL,
    strategy_label TEXT NOT NULL,
    model_label TEXT NOT NULL,
    seed INTEGER NOT NULL,
    started_at REAL NOT NULL,
    finished_at REAL NOT NULL,
    seconds REAL NOT NULL,
    n_rounds INTEGER NOT NULL,
    worker TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS rounds (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    round INTEGER NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (run_id, round)
);
CREATE TABLE IF NOT EXISTS invocations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at REAL NOT NULL,
    host TEXT NOT NULL,
    jobs INTEGER NOT NULL,
    n_runs INTEGER NOT NULL,
    n_already_done INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS reference_entropy (
    benchmark_key TEXT PRIMARY KEY,
    entropy BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS reference_panel (
    fit_id TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    benchmark_label TEXT NOT NULL,
    model_label TEXT NOT NULL,
    reference TEXT NOT NULL,
    seed INTEGER NOT NULL,
    finished_at REAL NOT NULL,
    record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS representations (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    n_labeled INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (run_id, n_labeled)
);
CREATE TABLE IF NOT EXISTS panel_representations (
    fit_id TEXT PRIMARY KEY REFERENCES reference_panel(fit_id),
    data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS benchmark_data (
    benchmark_key TEXT NOT NULL,
    kind TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (benchmark_key, kind)
);
"""


class IncompatibleRunDirectory(AnchoralError):
    """The directory holds something this version must not read or append to."""


class ResultsStore:
    """Open with ``ResultsStore.for_study`` (runner: create or resume) or ``ResultsStore.open`` (report)."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / DB_NAME

    # -- opening -------------------------------------------------------------------------
    @classmethod
    def for_study(cls, run_dir: str | Path, config) -> "ResultsStore":
        """The store of ``config``'s run directory: created if the directory is new or empty,
        resumed if it holds this same study, extended if ``config`` only adds runs to it (every
        stored run and panel fit is one of ``config``'s: e.g. a strategy added to the grid),
        refused otherwise."""
        run_dir = Path(run_dir)
        store = cls(run_dir)
        if store.path.exists():
            store._check_version()
            recorded = store.meta().get("config")
            with closing(store._connect()) as connection, connection:
                connection.executescript(SCHEMA)  # adds tables newer than the directory (all IF NOT EXISTS)
            if recorded != config.canonical():
                store._extend(config)
            return store
        if run_dir.exists() and any(run_dir.iterdir()):
            raise IncompatibleRunDirectory(
                f"{run_dir} is not empty and holds no {DB_NAME}: it is not an anchoral run directory; "
                "choose another --out"
            )
        run_dir.mkdir(parents=True, exist_ok=True)
        with closing(store._connect()) as connection, connection:
            connection.executescript(SCHEMA)
            connection.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", [
                ("format_version", str(FORMAT_VERSION)),
                ("study", config.name),
                ("config", config.canonical()),
                ("created_at", str(time.time())),
            ])
        if config.source:
            (run_dir / CONFIG_NAME).write_text(config.source)
        else:
            (run_dir / "config.json").write_text(config.canonical())
        return store

    @classmethod
    def open(cls, run_dir: str | Path) -> "ResultsStore":
        """An existing run directory, for reading."""
        run_dir = Path(run_dir)
        store = cls(run_dir)
        if not store.path.exists():
            raise IncompatibleRunDirectory(
                f"{run_dir} holds no {DB_NAME}; expected a directory written by `anchoral run`"
            )
        store._check_version()
        return store

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, timeout=60)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")
        return connection

    def _check_version(self) -> None:
        try:
            version = self.meta().get("format_version")
        except sqlite3.DatabaseError as exc:
            raise IncompatibleRunDirectory(f"{self.path} is not a readable results store: {exc}") from exc
        if version != str(FORMAT_VERSION):
            raise IncompatibleRunDirectory(
                f"{self.path} was written in results format {version!r}; this anchoral reads and appends "
                f"format {FORMAT_VERSION} only. Rerun the study into a new directory (--out) instead of mixing formats"
            )

    def _extend(self, config) -> None:
        """Adopt ``config`` if every stored run and panel fit belongs to it; refuse otherwise."""
        stray_runs = self.completed_run_ids() - {plan.run_id for plan in config.runs()}
        stray_fits = self.panel_fit_ids() - {fit.fit_id for fit in config.panel_fits()}
        if self.meta().get("study") != config.name or stray_runs or stray_fits:
            detail = (f"study {self.meta().get('study')!r}, not {config.name!r}" if self.meta().get("study") != config.name
                      else f"{len(stray_runs)} stored run(s) and {len(stray_fits)} panel fit(s) are not in this config")
            raise IncompatibleRunDirectory(
                f"{self.run_dir} holds results of a different study config ({detail}; see "
                f"{self.run_dir / CONFIG_NAME}); rerun with that config to resume it, or pass --out with a new "
                "directory for this one"
            )
        with closing(self._connect()) as connection, connection:
            connection.execute("UPDATE meta SET value = ? WHERE key = 'config'", (config.canonical(),))
        if config.source:
            (self.run_dir / CONFIG_NAME).write_text(config.source)
        else:
            (self.run_dir / "config.json").write_text(config.canonical())

    # -- reading -------------------------------------------------------------------------
    def meta(self) -> dict:
        with closing(self._connect()) as connection:
            return dict(connection.execute("SELECT key, value FROM meta"))

    def completed_run_ids(self) -> set[str]:
        with closing(self._connect()) as connection:
            return {row[0] for row in connection.execute("SELECT run_id FROM runs")}

    def runs(self) -> pd.DataFrame:
        with closing(self._connect()) as connection:
            return pd.read_sql_query("SELECT * FROM runs ORDER BY finished_at", connection)

    def invocations(self) -> pd.DataFrame:
        with closing(self._connect()) as connection:
            return pd.read_sql_query("SELECT * FROM invocations ORDER BY id", connection)

    def load_results(self) -> pd.DataFrame:
        """One row per round of every finished run, with the run's labels and spec columns."""
        with closing(self._connect()) as connection:
            rows = connection.execute(
                "SELECT runs.run_id, runs.spec, runs.benchmark_label, runs.strategy_label, runs.model_label, "
                "rounds.record FROM rounds JOIN runs USING (run_id) ORDER BY runs.finished_at, rounds.round"
            ).fetchall()
        records = []
        for run_id, spec, benchmark_label, strategy_label, model_label, record in rows:
            spec = json.loads(spec)
            records.append({
                **json.loads(record),
                "run_id": run_id,
                "benchmark_label": benchmark_label,
                "strategy_label": strategy_label,
                "model_label": model_label,
                "encoder": spec["benchmark"].get("encoder", ""),
                "benchmark_params": json.dumps(spec["benchmark"]["params"], sort_keys=True),
            })
        frame = pd.DataFrame(records)
        if not frame.empty and frame["model_label"].nunique() > 1:  # tables compare strategy x model rows
            frame["strategy_label"] = frame["strategy_label"] + " · " + frame["model_label"]
        return frame

    def panel_fit_ids(self) -> set[str]:
        """Ids of the reference-panel fits stored (none in a directory older than the panel)."""
        if not self._has_table("reference_panel"):
            return set()
        with closing(self._connect()) as connection:
            return {row[0] for row in connection.execute("SELECT fit_id FROM reference_panel")}

    def load_panel(self) -> pd.DataFrame:
        """One row per stored reference-panel fit, with its spec and its benchmark and model labels."""
        if not self._has_table("reference_panel"):
            return pd.DataFrame()
        with closing(self._connect()) as connection:
            rows = connection.execute("SELECT fit_id, spec, benchmark_label, model_label, record FROM reference_panel "
                                      "ORDER BY finished_at").fetchall()
        return pd.DataFrame([{**json.loads(record), "fit_id": fit_id, "spec": spec, "benchmark_label": benchmark_label,
                              "model_label": model_label} for fit_id, spec, benchmark_label, model_label, record in rows])

    def _has_table(self, name: str) -> bool:
        with closing(self._connect()) as connection:
            return connection.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                                      (name,)).fetchone() is not None

    def reference_entropy(self, benchmark_key: str) -> np.ndarray | None:
        with closing(self._connect()) as connection:
            row = connection.execute("SELECT entropy FROM reference_entropy WHERE benchmark_key = ?",
                                     (benchmark_key,)).fetchone()
        return None if row is None else np.load(io.BytesIO(row[0]))

    def benchmark_data(self, benchmark_key: str, kind: str):
        """A stored per-benchmark array or text (``"pool_features"``, ``"probing_set"`` (a dict of
        arrays), ``"probing_error"``), or None."""
        if not self._has_table("benchmark_data"):
            return None
        with closing(self._connect()) as connection:
            row = connection.execute("SELECT data FROM benchmark_data WHERE benchmark_key = ? AND kind = ?",
                                     (benchmark_key, kind)).fetchone()
        return None if row is None else _decode(row[0])

    def representations(self, run_id: str) -> dict[int, np.ndarray]:
        """f_enc of the probing set by labeled-set size, for one run (empty if none is stored)."""
        if not self._has_table("representations"):
            return {}
        with closing(self._connect()) as connection:
            rows = connection.execute("SELECT n_labeled, data FROM representations WHERE run_id = ?",
                                      (run_id,)).fetchall()
        return {int(n_labeled): _decode(data) for n_labeled, data in rows}

    def panel_representation(self, fit_id: str) -> np.ndarray | None:
        if not self._has_table("panel_representations"):
            return None
        with closing(self._connect()) as connection:
            row = connection.execute("SELECT data FROM panel_representations WHERE fit_id = ?", (fit_id,)).fetchone()
        return None if row is None else _decode(row[0])

    # -- appending -----------------------------------------------------------------------
    def add_benchmark_data(self, benchmark_key: str, kind: str, value) -> None:
        """Store a per-benchmark array, dict of arrays or text once (a second copy is ignored)."""
        with closing(self._connect()) as connection, connection:
            connection.execute("INSERT OR IGNORE INTO benchmark_data (benchmark_key, kind, data) VALUES (?, ?, ?)",
                               (benchmark_key, kind, _encode(value)))

    def log_invocation(self, *, jobs: int, n_runs: int, n_already_done: int) -> None:
        with closing(self._connect()) as connection, connection:
            connection.execute(
                "INSERT INTO invocations (started_at, host, jobs, n_runs, n_already_done) VALUES (?, ?, ?, ?, ?)",
                (time.time(), socket.gethostname(), jobs, n_runs, n_already_done),
            )

    def add_reference_entropy(self, benchmark_key: str, entropy: np.ndarray) -> None:
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(entropy, dtype=np.float64))
        with closing(self._connect()) as connection, connection:
            connection.execute("INSERT OR IGNORE INTO reference_entropy (benchmark_key, entropy) VALUES (?, ?)",
                               (benchmark_key, buffer.getvalue()))

    def add_panel_fit(self, fit, record: dict, representation: np.ndarray | None = None) -> None:
        """Store one reference-panel fit (a ``config.PanelFit``), its record and f_enc of the probing set
        (if given), in one transaction; a second copy is ignored."""
        from anchoral.experiments.config import canonical_json

        with closing(self._connect()) as connection, connection:
            inserted = connection.execute(
                "INSERT OR IGNORE INTO reference_panel (fit_id, spec, benchmark_label, model_label, reference, seed, "
                "finished_at, record) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (fit.fit_id, canonical_json(fit.key()), fit.benchmark.label, fit.model_label, fit.reference, fit.seed,
                 time.time(), json.dumps(record, default=json_default)),
            ).rowcount
            if inserted and representation is not None:
                connection.execute("INSERT OR REPLACE INTO panel_representations (fit_id, data) VALUES (?, ?)",
                                   (fit.fit_id, _encode(representation)))

    def add_run(self, plan, rows: list[dict], *, started_at: float, seconds: float, worker: str,
                representations: dict[int, np.ndarray] | None = None) -> bool:
        """Store a finished run, all its rounds and its f_enc snapshots of the probing set (by
        labeled-set size) in one transaction.

        Returns False (and stores nothing) if the run is already present."""
        from anchoral.experiments.config import canonical_json

        with closing(self._connect()) as connection:
            try:
                with connection:
                    connection.execute(
                        "INSERT INTO runs (run_id, spec, benchmark_label, strategy_label, model_label, seed, "
                        "started_at, finished_at, seconds, n_rounds, worker) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (plan.run_id, canonical_json(plan.key()), plan.benchmark.label, plan.strategy.label,
                         plan.model.label, plan.seed, started_at, time.time(), seconds, len(rows), worker),
                    )
                    connection.executemany(
                        "INSERT INTO rounds (run_id, round, record) VALUES (?, ?, ?)",
                        [(plan.run_id, int(row["round"]), json.dumps(row, default=json_default)) for row in rows],
                    )
                    connection.executemany(
                        "INSERT INTO representations (run_id, n_labeled, data) VALUES (?, ?, ?)",
                        [(plan.run_id, int(size), _encode(array)) for size, array in (representations or {}).items()],
                    )
            except sqlite3.IntegrityError:
                return False
        return True



def _encode(value) -> bytes:
    """An array, a dict of arrays or a text as bytes (``.npy`` / ``.npz`` / UTF-8 behind a one-byte tag)."""
    buffer = io.BytesIO()
    if isinstance(value, str):
        return b"t" + value.encode("utf-8")
    if isinstance(value, dict):
        np.savez(buffer, **value)
        return b"z" + buffer.getvalue()
    np.save(buffer, np.asarray(value), allow_pickle=False)
    return b"a" + buffer.getvalue()


def _decode(data: bytes):
    tag, body = data[:1], data[1:]
    if tag == b"t":
        return body.decode("utf-8")
    if tag == b"z":
        with np.load(io.BytesIO(body), allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    return np.load(io.BytesIO(body), allow_pickle=False)
