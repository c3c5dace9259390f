import pytest

from anchoral.store.create import DataSpec, init_project
from tests.store.fakes import HashingEncoder, write_pool

LABELS = ["positive", "negative"]


@pytest.fixture
def encoder():
    return HashingEncoder()


@pytest.fixture
def pool_csv(tmp_path):
    path = tmp_path / "pool.csv"
    frame = write_pool(path, 60, labeled=4)
    return path, frame


@pytest.fixture
def project(tmp_path, pool_csv):
    """A 60-item project with 2 labels of each class, batch size 6."""
    path, _ = pool_csv
    opened = init_project(tmp_path / "proj", DataSpec(path, "text", "id", "label"), LABELS, batch_size=6)
    yield opened
    opened.close()


@pytest.fixture
def truth(pool_csv):
    return dict(zip(pool_csv[1]["id"], pool_csv[1]["truth"]))
