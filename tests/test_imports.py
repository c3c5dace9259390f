"""What a labeling project's round imports: scikit-learn (about 2 s) only when a strategy or
an inference actually clusters, pandas (0.35 s) and scipy (0.2 s) not at all, the MiniLM
stack only when a text is not in the embedding cache (issue "Labeling as a team", item 6;
``benchmarks/query_speed.py`` times the whole round)."""

import subprocess
import sys


def fresh_python(code: str) -> str:
    """What ``code`` prints in a new interpreter (nothing imported yet), stripped."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    return done.stdout.strip()


def test_a_projects_round_module_does_not_import_scikit_learn():
    code = "import sys, anchoral.store.rounds, anchoral.strategies, anchoral.groups; print('sklearn' in sys.modules)"
    assert fresh_python(code) == "False"


def test_a_projects_round_imports_neither_pandas_nor_scipy_nor_the_encoder_stack():
    code = ("import sys, anchoral.cli, anchoral.store.rounds, anchoral.strategies, anchoral.encoders.minilm\n"
            "print(sorted(m for m in ('pandas', 'scipy', 'transformers', 'tokenizers') if m in sys.modules))")
    assert fresh_python(code) == "[]"


def test_the_data_package_still_gives_every_name_it_lists():
    code = ("import anchoral.data as data\n"
            "missing = [name for name in data.__all__ if getattr(data, name, None) is None]\n"
            "print(missing, data.load_benchmark.__module__)")
    assert fresh_python(code) == "[] anchoral.data.benchmarks"


def test_clustering_still_works_once_it_is_needed():
    code = ("import sys, numpy as np\n"
            "from anchoral.groups.clusters import fit_clusters\n"
            "rows = np.r_[np.ones((5, 2)), -np.ones((5, 2))] + np.random.default_rng(0).normal(0, .01, (10, 2))\n"
            "print(sorted(np.bincount(fit_clusters(rows, 2).labels_).tolist()), 'sklearn' in sys.modules)")
    assert fresh_python(code) == "[5, 5] True"
