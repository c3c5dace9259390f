"""Label-free group inference: one module per method, each a function of what a real
deployment has (labeled features and labels, the pool's pretrained features, a factory
of fresh models), never of the true groups. Scored against the true groups outside
itself (``anchoral.metrics.minority``).

==================  =====================================================  ==============
name                what marks an example minority                         extra cost
==================  =====================================================  ==============
``dynamics``        forgotten or never learned during the fit (ALVIN §2.2)  none
``out-of-fold``     misclassified by a head trained on the other k folds    k fits
``early-stopped``   misclassified after the first epoch(s) (JTT)            none
``clusters``        in a smaller (class x k-means cluster) cell             one k-means
==================  =====================================================  ==============
"""

from __future__ import annotations

import inspect

import numpy as np

from anchoral.errors import ValidationError, unknown_name
from anchoral.groups.base import InferredGroups, ModelFactory
from anchoral.groups.clusters import label_by_cluster
from anchoral.groups.crossfit import out_of_fold_errors
from anchoral.groups.dynamics import infer_minority, training_dynamics
from anchoral.groups.early import early_stopped_errors

CONTEXT = ("model_factory", "pool_features", "fit_report", "rng")
"""What a deployment supplies to every method; each method takes the part it uses."""

GROUP_METHODS = {
    "dynamics": training_dynamics,
    "out-of-fold": out_of_fold_errors,
    "early-stopped": early_stopped_errors,
    "clusters": label_by_cluster,
}


def check_method(name: str) -> str:
    if name not in GROUP_METHODS:
        raise unknown_name("group inference method", name, GROUP_METHODS)
    return name


def method_parameters(method: str) -> tuple[str, ...]:
    """Every keyword the method's function takes (its own parameters and the ``CONTEXT`` it uses)."""
    return tuple(inspect.signature(GROUP_METHODS[check_method(method)]).parameters)


def infer_groups(method: str, features, labels, *, model_factory: ModelFactory | None = None, pool_features=None,
                 fit_report=None, rng: np.random.Generator | None = None, **params) -> InferredGroups:
    """Run the group inference registered as ``method`` on the labeled set.

    ``model_factory`` builds fresh models for the methods that train (out-of-fold, and the
    fit-based ones when no ``fit_report`` is given); ``pool_features`` are the pretrained
    features of the whole pool (clusters); ``params`` go to the method (``n_folds``,
    ``n_clusters``, ``min_margin``, ``epochs``).
    """
    function = GROUP_METHODS[check_method(method)]
    accepted = method_parameters(method)
    unknown = sorted(set(params) - set(accepted) | {"features", "labels"} & set(params))
    if unknown:
        valid = [name for name in accepted if name not in CONTEXT and name not in ("features", "labels")]
        raise ValidationError(f"group inference {method!r} has no parameter {unknown[0]!r}; "
                              f"its parameters: {', '.join(valid) or '(none)'}")
    context = {"model_factory": model_factory, "pool_features": pool_features, "fit_report": fit_report, "rng": rng}
    return function(features, labels, **{k: v for k, v in context.items() if k in accepted}, **params)


__all__ = ["GROUP_METHODS", "InferredGroups", "check_method", "infer_groups", "infer_minority", "method_parameters"]
