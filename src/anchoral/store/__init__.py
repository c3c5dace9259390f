"""Durable state of a labeling project: one SQLite file per project directory.

``create.init_project`` checks a data file and creates a project; ``Project``
reads and writes it (one transaction per state change); ``AnnotationQueue`` hands
the latest batch to concurrent annotators; ``rounds.run_round`` trains, selects
and records a round; ``overlap`` shows part of each batch to several labelers,
``agreement`` measures how well they agree and ``review`` resolves where they do
not; ``commands`` holds the typer commands. This module imports only the light
parts, so the command line starts fast.
"""

from anchoral.store.database import PROJECT_FILE, SCHEMA_VERSION, ProjectError
from anchoral.store.project import BatchProgress, Item, LabelEvent, Project, RoundInfo
from anchoral.store.queue import AnnotationQueue, LeaseConflict, StaleLabel

__all__ = [
    "PROJECT_FILE",
    "SCHEMA_VERSION",
    "AnnotationQueue",
    "BatchProgress",
    "Item",
    "LabelEvent",
    "LeaseConflict",
    "Project",
    "ProjectError",
    "RoundInfo",
    "StaleLabel",
]
