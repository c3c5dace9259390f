"""Study configs: a TOML file -> a validated StudyConfig -> the grid of runs it asks for.

A study crosses benchmarks (each with an encoder) x strategies x models x seeds, and
any parameter listed under ``sweep`` multiplies its entry by the listed values. The
loop (seed set, batch size, budget and the checkpoints it must land on, e.g. 1%, 5%
and 10% of the pool) is shared by every run: one run to 10% reports all three
checkpoints, so budgets are checkpoints of one run rather than separate runs.

Example (``configs/main.toml`` is a full one)::

    [study]
    name = "main"
    seeds = [0, 1, 2]

    [loop]
    batch_size = 50
    budget = 0.10
    checkpoints = [0.01, 0.05, 0.10]

    [[benchmarks]]
    name = "vader-shortcut"
    params = { pool_size = 5000 }
    sweep = { rho = [0.9, 0.99] }
    encoder = "minilm"

    [[strategies]]
    name = "random"

    [[strategies]]
    name = "alvin"
    sweep = { alpha = [0.5, 2.0] }

An optional ``[execution]`` table runs each study's pool encoding, prediction and search
on Ray (``backend = "ray"``, with ``address`` of an existing cluster or ``num_cpus`` of a
local instance; see docs/scale.md); it changes where work runs, never the results.

Everything is checked before anything runs: an unknown key, benchmark, strategy,
encoder, model or parameter raises ConfigError naming where it is (e.g.
``strategies[1].sweep.alpah``) and the valid choices.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import itertools
import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from anchoral.data.benchmarks import benchmark_defaults, list_benchmarks
from anchoral.encoders.registry import DEFAULT_ENCODER, available_encoders, encoder_parameters
from anchoral.errors import ValidationError
from anchoral.execution import EXECUTORS, Executor, check_ray_address, make_executor
from anchoral.experiments.references import panel_fits
from anchoral.loop import LoopConfig
from anchoral.models import MODELS, make_model
from anchoral.models.robust import plain_model_params
from anchoral.strategies import STRATEGIES, make_strategy

SECTIONS = ("study", "loop", "model", "benchmarks", "strategies", "report", "execution")
STUDY_KEYS = ("name", "description", "seeds")
MODEL_KEYS = ("name", "params", "sweep")
BENCHMARK_KEYS = ("name", "params", "sweep", "encoder", "encoder_params")
STRATEGY_KEYS = ("name", "params", "sweep")
REPORT_KEYS = ("fractions", "baseline")
EXECUTION_KEYS = ("backend", "address", "num_cpus")
LOOP_KEYS = tuple(f.name for f in dataclasses.fields(LoopConfig))
DEFAULT_SEEDS = (0, 1, 2)
DEFAULT_FRACTIONS = (0.01, 0.05, 0.10)
STUDY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class ConfigError(ValidationError):
    """A study config is invalid; the message starts with where (file and key path)."""


@dataclass(frozen=True)
class Variant:
    """One concrete choice of a benchmark, strategy or model: a name and explicit parameters.

    ``label`` names it in tables: the name plus the parameters that differ between the
    variants of the same name (``alvin(alpha=0.5)``); ``where`` is its config location.
    For benchmarks, ``encoder`` and ``encoder_params`` say how its texts are embedded.
    """

    name: str
    params: dict
    label: str = ""
    where: str = ""
    encoder: str = ""
    encoder_params: dict = dataclasses.field(default_factory=dict)

    def key(self) -> dict:
        """What identifies the variant (label and location excluded)."""
        key = {"name": self.name, "params": self.params}
        if self.encoder:
            key.update(encoder=self.encoder, encoder_params=self.encoder_params)
        return key


@dataclass(frozen=True)
class RunPlan:
    """One run of the grid; ``run_id`` is a hash of everything that determines its results."""

    benchmark: Variant
    strategy: Variant
    model: Variant
    loop: LoopConfig
    seed: int

    def key(self) -> dict:
        return {
            "benchmark": self.benchmark.key(),
            "strategy": self.strategy.key(),
            "model": self.model.key(),
            "loop": dataclasses.asdict(self.loop),
            "seed": self.seed,
        }

    @property
    def run_id(self) -> str:
        return hashlib.sha256(canonical_json(self.key()).encode()).hexdigest()[:16]

    def describe(self) -> str:
        return f"{self.benchmark.label} / {self.strategy.label} / seed {self.seed}"


@dataclass(frozen=True)
class PanelFit:
    """One fit of the reference panel (``anchoral.experiments.references``): ``reference`` on
    ``benchmark`` with ``model``'s plain head, initial weights of ``seed``, and (oracle-balanced)
    ``fraction`` of the pool. Model variants that differ only in robust-head options share it."""

    benchmark: Variant
    model: Variant
    reference: str
    seed: int
    fraction: float | None = None

    def key(self) -> dict:
        return {
            "benchmark": self.benchmark.key(),
            "model": {"name": self.model.name, "params": plain_model_params(self.model.params)},
            "reference": self.reference,
            "seed": self.seed,
            "fraction": self.fraction,
        }

    @property
    def fit_id(self) -> str:
        return hashlib.sha256(canonical_json(self.key()).encode()).hexdigest()[:16]

    @property
    def model_label(self) -> str:
        """The plain model's name and explicit parameters (``mlp(hidden_dim=32)``)."""
        params = plain_model_params(self.model.params)
        return self.model.name + (f"({params_text(params)})" if params else "")

    def describe(self) -> str:
        at = "" if self.fraction is None else f" at {100 * self.fraction:g}%"
        return f"{self.benchmark.label} / reference {self.reference}{at} / seed {self.seed}"


@dataclass(frozen=True)
class ReportOptions:
    fractions: tuple[float, ...] = ()  # empty = the loop's fractional checkpoints and budget
    baseline: str = "random"


@dataclass(frozen=True)
class ExecutionOptions:
    """Where a study's pool-wide work runs (``[execution]``); not part of any run's identity,
    since every backend gives the same results.

    backend : ``"local"`` (this process, the default) or ``"ray"``.
    address : for ``"ray"``: ``None`` starts a local instance, ``"auto"``, ``"HOST:6379"`` or
        ``"ray://HOST:10001"`` connect to an existing cluster.
    num_cpus : for ``"ray"`` with no address: CPUs of the local instance.
    """

    backend: str = "local"
    address: str | None = None
    num_cpus: int | None = None

    def make(self) -> Executor:
        """The executor these options describe (connected, for Ray)."""
        if self.backend == "local":
            return make_executor("local")
        return make_executor(self.backend, address=self.address, num_cpus=self.num_cpus)


@dataclass(frozen=True)
class StudyConfig:
    name: str
    description: str
    seeds: tuple[int, ...]
    loop: LoopConfig
    models: tuple[Variant, ...]
    benchmarks: tuple[Variant, ...]
    strategies: tuple[Variant, ...]
    report: ReportOptions
    source: str = ""
    execution: ExecutionOptions = ExecutionOptions()

    def runs(self) -> list[RunPlan]:
        """Every run, benchmark-major (so a benchmark's runs share one encoded pool)."""
        return [RunPlan(benchmark, strategy, model, self.loop, seed)
                for benchmark in self.benchmarks for model in self.models
                for strategy in self.strategies for seed in self.seeds]

    def panel_fits(self) -> list[PanelFit]:
        """Every fit of the reference panel, once per (benchmark, plain model, seed): erm-all, and
        oracle-balanced at each reported fraction."""
        fits = {}
        for benchmark in self.benchmarks:
            for model in self.models:
                for reference, seed, fraction in panel_fits(self.seeds, self.report_fractions()):
                    fit = PanelFit(benchmark, model, reference, seed, fraction)
                    fits.setdefault(fit.fit_id, fit)
        return list(fits.values())

    def canonical(self) -> str:
        """The grid as canonical JSON: two configs that ask for the same runs compare equal."""
        return canonical_json({
            "name": self.name,
            "seeds": list(self.seeds),
            "loop": dataclasses.asdict(self.loop),
            "models": [m.key() for m in self.models],
            "benchmarks": [b.key() for b in self.benchmarks],
            "strategies": [s.key() for s in self.strategies],
        })

    def report_fractions(self) -> tuple[float, ...]:
        """The fractions of the pool the accuracy tables report: ``[report] fractions``, else the
        loop's fractional checkpoints and budget, else DEFAULT_FRACTIONS."""
        if self.report.fractions:
            return self.report.fractions
        values = (*self.loop.checkpoints, self.loop.budget)
        return tuple(sorted({float(v) for v in values if isinstance(v, float)})) or DEFAULT_FRACTIONS


def canonical_json(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=list)


def load_config(path: str | Path) -> StudyConfig:
    """Read and validate a study config file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    text = path.read_text()
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    try:
        return parse_config(raw, source=text)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def parse_config(raw: dict, *, source: str = "") -> StudyConfig:
    """Validate a parsed TOML document and build the StudyConfig."""
    _check_table(raw, "the config", SECTIONS)
    study = raw.get("study")
    if study is None:
        raise ConfigError("missing [study] table; it needs at least name = \"...\"")
    _check_table(study, "study", STUDY_KEYS)
    name = study.get("name")
    if not isinstance(name, str) or not STUDY_NAME.match(name):
        raise ConfigError(f"study.name must be a name of letters, digits, '.', '_' or '-' (it names the run "
                          f"directory); got {name!r}")
    description = study.get("description", "")
    if not isinstance(description, str):
        raise ConfigError(f"study.description must be a string; got {description!r}")
    seeds = _parse_seeds(study.get("seeds", list(DEFAULT_SEEDS)))
    loop = _parse_loop(raw.get("loop", {}))
    models = _parse_models(raw.get("model", {"name": "mlp"}))
    benchmarks = _parse_benchmarks(raw.get("benchmarks"))
    strategies = _parse_strategies(raw.get("strategies"))
    report = _parse_report(raw.get("report", {}), strategies)
    execution = parse_execution(raw.get("execution", {}))
    return StudyConfig(name=name, description=description, seeds=seeds, loop=loop, models=models,
                       benchmarks=benchmarks, strategies=strategies, report=report, source=source,
                       execution=execution)


def _check_table(value, where: str, allowed) -> None:
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a table; got {_type_name(value)}")
    unknown = [key for key in value if key not in allowed]
    if unknown:
        prefix = "" if where == "the config" else f"{where}."
        raise ConfigError(f"unknown key {prefix}{unknown[0]}; expected one of: {', '.join(sorted(allowed))}")


def _type_name(value) -> str:
    return {dict: "a table", list: "an array", str: "a string", bool: "a boolean", int: "an integer",
            float: "a float"}.get(type(value), type(value).__name__)


def _parse_seeds(value) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        if value <= 0:
            raise ConfigError(f"study.seeds as a count must be positive; got {value}")
        return tuple(range(value))
    if (not isinstance(value, list) or not value
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in value)):
        raise ConfigError(f"study.seeds must be a non-empty array of non-negative integers (or a count); got {value!r}")
    if len(set(value)) != len(value):
        raise ConfigError(f"study.seeds must not repeat a seed; got {value}")
    return tuple(value)


def _parse_loop(value) -> LoopConfig:
    _check_table(value, "loop", LOOP_KEYS)
    values = dict(value)
    for key in ("batch_size", "min_seed_per_class"):
        if key in values and (not isinstance(values[key], int) or isinstance(values[key], bool) or values[key] <= 0):
            raise ConfigError(f"loop.{key} must be a positive integer; got {values[key]!r}")
    for key in ("budget", "seed_size"):
        if key in values:
            _check_size(values[key], f"loop.{key}")
    if "checkpoints" in values:
        if not isinstance(values["checkpoints"], list):
            raise ConfigError(f"loop.checkpoints must be an array of counts or fractions; got {values['checkpoints']!r}")
        for position, checkpoint in enumerate(values["checkpoints"]):
            _check_size(checkpoint, f"loop.checkpoints[{position}]")
        values["checkpoints"] = tuple(values["checkpoints"])
    return LoopConfig(**values)


def _check_size(value, where: str) -> None:
    ok = (isinstance(value, int) and not isinstance(value, bool) and value > 0) or (
        isinstance(value, float) and 0 < value <= 1)
    if not ok:
        raise ConfigError(f"{where} must be a positive integer count or a float fraction in (0, 1] of the pool; "
                          f"got {value!r}")


def _entries(value, section: str) -> list[tuple[str, dict]]:
    """(location, table) of each entry of an array section; a bare string means {name = it}."""
    if value is None:
        raise ConfigError(f"missing [[{section}]]: list at least one entry")
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{section} must be a non-empty array of tables (or of names); got {value!r}")
    entries = []
    for position, entry in enumerate(value):
        where = f"{section}[{position}]"
        if isinstance(entry, str):
            entry = {"name": entry}
        if not isinstance(entry, dict):
            raise ConfigError(f"{where} must be a table or a name; got {_type_name(entry)}")
        entries.append((where, entry))
    return entries


def _name(entry: dict, where: str, valid, kind: str) -> str:
    name = entry.get("name")
    if not isinstance(name, str):
        raise ConfigError(f"{where}.name is required: the {kind} to use; expected one of: {', '.join(sorted(valid))}")
    if name not in valid:
        raise ConfigError(f"{where}.name: unknown {kind} {name!r}; expected one of: {', '.join(sorted(valid))}")
    return name


def _expand(entry: dict, where: str, valid_params: dict, owner: str) -> list[dict]:
    """Check ``params`` and ``sweep`` against ``valid_params``; return one explicit-params dict per sweep point."""
    params = entry.get("params", {})
    sweep = entry.get("sweep", {})
    for key, table in (("params", params), ("sweep", sweep)):
        if not isinstance(table, dict):
            raise ConfigError(f"{where}.{key} must be a table; got {_type_name(table)}")
        for parameter in table:
            if parameter not in valid_params:
                choices = ", ".join(sorted(valid_params)) or f"(none: {owner} takes no parameters)"
                raise ConfigError(f"{where}.{key}.{parameter}: unknown parameter of {owner}; expected one of: {choices}")
    for parameter, values in sweep.items():
        if parameter in params:
            raise ConfigError(f"{where}.sweep.{parameter} is also set in {where}.params; set it in one place")
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{where}.sweep.{parameter} must be a non-empty array of values; got {values!r}")
        if len({canonical_json(v) for v in values}) != len(values):
            raise ConfigError(f"{where}.sweep.{parameter} repeats a value: {values!r}")
    keys = list(sweep)
    return [{**params, **dict(zip(keys, point))} for point in itertools.product(*(sweep[k] for k in keys))]


def constructor_parameters(cls) -> dict:
    """Keyword parameters (with defaults) a class's constructor accepts, following ``**params``
    forwarding up the class hierarchy and leaving out parameters a subclass fixes (``fixed``)."""
    for klass in cls.__mro__:
        if klass is object:
            return {}
        if "__init__" not in vars(klass):
            continue
        parameters = list(inspect.signature(klass.__init__).parameters.values())[1:]
        if any(p.kind is p.VAR_KEYWORD for p in parameters):
            continue
        fixed = getattr(cls, "fixed", {}) or {}
        return {p.name: p.default for p in parameters
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in fixed}
    return {}


def _parse_models(value) -> tuple[Variant, ...]:
    """``[model]`` (one model, optionally swept) or ``[[model]]`` (several, e.g. the plain MLP head
    next to a robust linear head)."""
    if isinstance(value, list) and value and all(isinstance(entry, dict) for entry in value):
        entries = [(f"model[{i}]", entry) for i, entry in enumerate(value)]
    elif isinstance(value, dict):
        entries = [("model", value)]
    else:
        raise ConfigError(f"model must be a table ([model] name = \"mlp\") or an array of tables ([[model]]); "
                          f"got {_type_name(value)}")
    variants = []
    for where, entry in entries:
        _check_table(entry, where, MODEL_KEYS)
        name = _name({"name": entry.get("name", "mlp")}, where, MODELS, "model")
        valid = {k: v for k, v in constructor_parameters(MODELS[name]).items() if k not in ("n_classes", "seed")}
        for params in _expand(entry, where, valid, f"model {name!r}"):
            try:
                make_model(name, 2, seed=0, **params)
            except ValidationError as exc:
                raise ConfigError(f"{where}.params: {exc}") from None
            variants.append(Variant(name, params, where=where))
    _check_distinct(variants, "models")
    return _labelled(variants)


def _parse_benchmarks(value) -> tuple[Variant, ...]:
    registered = dict(list_benchmarks())
    variants = []
    for where, entry in _entries(value, "benchmarks"):
        _check_table(entry, where, BENCHMARK_KEYS)
        name = _name(entry, where, registered, "benchmark")
        encoder = entry.get("encoder", DEFAULT_ENCODER)
        if encoder not in available_encoders():
            raise ConfigError(f"{where}.encoder: unknown encoder {encoder!r}; expected one of: "
                              f"{', '.join(available_encoders())}")
        encoder_params = entry.get("encoder_params", {})
        _check_parameters(encoder_params, f"{where}.encoder_params", encoder_parameters(encoder), f"encoder {encoder!r}")
        for params in _expand(entry, where, benchmark_defaults(name), f"benchmark {name!r}"):
            variants.append(Variant(name, params, where=where, encoder=encoder, encoder_params=dict(encoder_params)))
    _check_distinct(variants, "benchmarks")
    return _labelled(variants, with_encoder=True)


def _check_parameters(table, where: str, valid: dict, owner: str) -> None:
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table; got {_type_name(table)}")
    for parameter in table:
        if parameter not in valid:
            raise ConfigError(f"{where}.{parameter}: unknown parameter of {owner}; expected one of: "
                              f"{', '.join(sorted(valid)) or '(none)'}")


def _parse_strategies(value) -> tuple[Variant, ...]:
    variants = []
    for where, entry in _entries(value, "strategies"):
        _check_table(entry, where, STRATEGY_KEYS)
        name = _name(entry, where, STRATEGIES, "strategy")
        for params in _expand(entry, where, constructor_parameters(STRATEGIES[name]), f"strategy {name!r}"):
            try:
                make_strategy(name, **params)
            except ValidationError as exc:
                raise ConfigError(f"{where}: {exc}") from None
            variants.append(Variant(name, params, where=where))
    _check_distinct(variants, "strategies")
    return _labelled(variants)


def _parse_report(value, strategies) -> ReportOptions:
    _check_table(value, "report", REPORT_KEYS)
    fractions = value.get("fractions", [])
    if not isinstance(fractions, list) or not all(isinstance(f, float) and 0 < f <= 1 for f in fractions):
        raise ConfigError(f"report.fractions must be an array of floats in (0, 1]; got {fractions!r}")
    baseline = value.get("baseline", "random")
    names = sorted({s.name for s in strategies})
    if not isinstance(baseline, str):
        raise ConfigError(f"report.baseline must be a strategy name; got {baseline!r}")
    if "baseline" in value and baseline not in names:
        raise ConfigError(f"report.baseline: {baseline!r} is not one of the study's strategies: {', '.join(names)}")
    return ReportOptions(fractions=tuple(sorted(fractions)), baseline=baseline)


def parse_execution(value) -> ExecutionOptions:
    """Validate an ``[execution]`` table."""
    _check_table(value, "execution", EXECUTION_KEYS)
    backend = value.get("backend", "local")
    if backend not in EXECUTORS:
        raise ConfigError(f"execution.backend: unknown executor {backend!r}; expected one of: {', '.join(sorted(EXECUTORS))}")
    if backend == "local" and set(value) - {"backend"}:
        extra = sorted(set(value) - {"backend"})[0]
        raise ConfigError(f"execution.{extra} applies to backend = \"ray\" only; the study's backend is \"local\"")
    address = value.get("address")
    try:
        check_ray_address(address)
    except ValidationError as exc:
        raise ConfigError(f"execution.{exc}") from None
    num_cpus = value.get("num_cpus")
    if num_cpus is not None and (not isinstance(num_cpus, int) or isinstance(num_cpus, bool) or num_cpus <= 0):
        raise ConfigError(f"execution.num_cpus must be a positive integer; got {num_cpus!r}")
    if num_cpus is not None and address is not None:
        raise ConfigError("execution.num_cpus sizes a local Ray instance; leave it out when execution.address "
                          "points at a cluster")
    return ExecutionOptions(backend=backend, address=address, num_cpus=num_cpus)


def _check_distinct(variants: list[Variant], section: str) -> None:
    seen: dict[str, Variant] = {}
    for variant in variants:
        key = canonical_json(variant.key())
        if key in seen:
            raise ConfigError(f"{variant.where} repeats {seen[key].where} ({variant.name} with the same parameters); "
                              f"each {section[:-1]} must differ")
        seen[key] = variant


def _labelled(variants: list[Variant], *, with_encoder: bool = False) -> tuple[Variant, ...]:
    """Label each variant by its name and the parameters it sets explicitly among those that
    differ between the variants of that name (``alvin`` and ``alvin(alpha=0.5, beta=0.5)``)."""
    labelled = []
    for variant in variants:
        siblings = [v for v in variants if v.name == variant.name]
        keys = sorted({k for v in siblings for k in v.params})
        varying = [k for k in keys if len({canonical_json(v.params.get(k, "<unset>")) for v in siblings}) > 1]
        shown = [k for k in varying if k in variant.params]
        label = variant.name
        if shown:
            label += "(" + ", ".join(f"{k}={_short(variant.params[k])}" for k in shown) + ")"
        if with_encoder and len({(v.encoder, canonical_json(v.encoder_params)) for v in siblings}) > 1:
            label += f" [{variant.encoder}" + (f" {params_text(variant.encoder_params)}" if variant.encoder_params else "") + "]"
        labelled.append(dataclasses.replace(variant, label=label))
    return tuple(labelled)


def _short(value) -> str:
    return json.dumps(value) if isinstance(value, (dict, list)) else str(value)


def params_text(params: dict) -> str:
    return ", ".join(f"{k}={_short(v)}" for k, v in sorted(params.items()))
