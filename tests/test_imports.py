"""What a labeling project's round imports: scikit-learn (about 2 s) only when a strategy or
an inference actually clusters, not at import time (issue "Labeling as a team", item 6)."""

import subprocess
import sys


def test_a_projects_round_module_does_not_import_scikit_learn():
    code = "import sys, anchoral.store.rounds, anchoral.strategies, anchoral.groups; print('sklearn' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "False"


def test_clustering_still_works_once_it_is_needed():
    code = ("import sys, numpy as np\n"
            "from anchoral.groups.clusters import fit_clusters\n"
            "rows = np.r_[np.ones((5, 2)), -np.ones((5, 2))] + np.random.default_rng(0).normal(0, .01, (10, 2))\n"
            "print(sorted(np.bincount(fit_clusters(rows, 2).labels_).tolist()), 'sklearn' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "[5, 5] True"
