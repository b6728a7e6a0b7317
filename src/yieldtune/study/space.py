"""The search space: which hyperparameters a trial samples and how they become a :class:`RunConfig`.

Every parameter name always maps to the same Optuna distribution (TPE models each name by its history, and
a choice list that changes from trial to trial would break it). Two couplings need care:

* ``n_heads`` is sampled from its own fixed list and then lowered to the largest divisor of ``d_model``
  (the effective value is what goes into the config; with powers of two on both sides it never changes).
* ``ffn_dim`` is ``round(ffn_mult * d_model)``, so the width ratio, not the absolute size, is searched.

Conditional parameters are sampled only where they act: ``warmup_frac`` for schedulers with a warmup,
``step_gamma`` for ``step``, ``augment_ratio`` when ``use_augmentation`` is true, ``reaction_layers`` for the
hierarchical architecture.

``molecule_features`` is one categorical over named combinations (``"none"``, ``"morgan"``,
``"morgan+rdkit2d"``, ...), not one switch per featurizer, so TPE sees a fixed choice list; ``feature_combine``
and ``feature_dropout`` are sampled only where some features are used. ``encoder = "none"`` (no token encoder)
needs features and the hierarchical model: where a study searches it next to a featureless choice or the flat
architecture, the trials that can go without a token encoder sample ``encoder`` (all its choices) and the
others ``token_encoder`` (the same choices less ``"none"``), two names with one distribution each rather
than one name whose choices change.

``family`` picks the model family of a trial (``"transformer"`` or ``"gbm"``; a list searches both). Every
other parameter belongs to one family and is sampled only in that family's trials, so a GBM trial never
suggests ``d_model`` and a Transformer trial never suggests ``gbm_leaves``; the names stay disjoint and each
keeps its one distribution, so TPE models every name from the trials of its own family. A study file that
does not mention ``family`` trains Transformers only (the default below), as before families existed.

In the study file each entry of ``[search_space]`` is a fixed value (``pooling = "cls"``), a list
(categorical: ``batch_size = [32, 64]``) or a range table (``lr = {low = 1e-5, high = 1e-3, log = true}``,
``epochs = {low = 10, high = 50, step = 10}``). A range table may give only some keys; the rest come from
:data:`DEFAULT_SPACE`. Parameters the file does not mention are searched over :data:`DEFAULT_SPACE`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, get_args, get_origin

from yieldtune.config import DERIVED_MODEL_DEFAULTS, RunConfig, derived_encoder, needs_token_encoder, validate_config
from yieldtune.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    import optuna

    from yieldtune.study.spec import StudySpec

# Every schedule of yieldtune.train.schedulers takes a linear warmup; the condition stays so a schedule
# without one can be added by leaving it out here.
WARMUP_SCHEDULERS = ("constant", "cosine", "onecycle", "linear", "step", "plateau")


@dataclass(frozen=True)
class ParamDef:
    """One searchable name: its value type, the config key it sets, and when it is active."""

    kind: type  # int, float, str or bool
    target: str | None  # "section.key" it sets directly, or None for derived ones
    active: Callable[[dict[str, Any]], bool] = lambda values: True
    help: str = ""
    parent: str | None = None  # the parameter ``active`` looks at
    family: str | None = None  # the model family whose trials sample it (None: every trial)

    def is_active(self, values: dict[str, Any]) -> bool:
        if self.family is not None and values.get("family", "transformer") != self.family:
            return False
        return self.active(values)


def _transformer(kind: type, target: str | None, active: Callable[[dict[str, Any]], bool] = lambda values: True,
                 help: str = "", parent: str | None = None) -> ParamDef:
    return ParamDef(kind, target, active, help, parent, family="transformer")


def _gbm(kind: type, target: str, help: str = "") -> ParamDef:
    return ParamDef(kind, target, help=help, family="gbm")


PARAMS: dict[str, ParamDef] = {
    "family": ParamDef(str, "family", help="model family: transformer or gbm"),
    "epochs": _transformer(int, "train.epochs"),
    "architecture": _transformer(str, "model.architecture"),
    "d_model": _transformer(int, "model.d_model"),
    "n_layers": _transformer(int, "model.n_layers"),
    "reaction_layers": _transformer(int, "model.reaction_layers", lambda v: v.get("architecture") != "flat",
                                    parent="architecture"),
    "n_heads": _transformer(int, None, help="lowered to the largest divisor of d_model"),
    "ffn_mult": _transformer(float, None, help="ffn_dim = round(ffn_mult * d_model)"),
    "dropout": _transformer(float, "model.dropout"),
    "pooling": _transformer(str, "model.pooling"),
    "lr": _transformer(float, "train.lr"),
    "weight_decay": _transformer(float, "train.weight_decay"),
    "batch_size": _transformer(int, "train.batch_size"),
    "use_augmentation": _transformer(bool, None, help="gates augment_ratio; false means augment_ratio = 0"),
    "augment_ratio": _transformer(float, "train.augment_ratio", lambda v: bool(v.get("use_augmentation", True)),
                                  parent="use_augmentation"),
    "scheduler": _transformer(str, "train.scheduler"),
    "warmup_frac": _transformer(float, "train.warmup_frac", lambda v: v.get("scheduler") in WARMUP_SCHEDULERS,
                                parent="scheduler"),
    "step_gamma": _transformer(float, "train.step_gamma", lambda v: v.get("scheduler") == "step",
                               parent="scheduler"),
    "grad_clip": _transformer(float, "train.grad_clip"),
    "ema_decay": _transformer(float, "train.ema_decay", help="0 = no weight averaging"),
    "molecule_features": _transformer(str, "model.molecule_features",
                                      help="'+'-joined featurizer names (morgan, rdkit2d, pretrained) or 'none'"),
    "encoder": _transformer(str, "model.encoder"),
    "token_encoder": _transformer(str, "model.encoder", lambda v: _needs_token_encoder(v),
                                  help="the encoder of trials without features or with the flat model, where "
                                       "encoder searches 'none' (its other choices unless given)"),
    "feature_combine": _transformer(str, "model.feature_combine",
                                    lambda v: bool(feature_names(v.get("molecule_features"))),
                                    help="hierarchical trials with a token encoder only (what it combines)",
                                    parent="molecule_features"),
    "feature_dropout": _transformer(float, "model.feature_dropout",
                                    lambda v: bool(feature_names(v.get("molecule_features"))),
                                    parent="molecule_features"),
    "gbm_rounds": _gbm(int, "gbm.n_rounds", help="boosting rounds at most (early stopping on validation)"),
    "gbm_lr": _gbm(float, "gbm.learning_rate"),
    "gbm_leaves": _gbm(int, "gbm.num_leaves"),
    "gbm_min_child_samples": _gbm(int, "gbm.min_child_samples"),
    "gbm_feature_fraction": _gbm(float, "gbm.feature_fraction"),
    "gbm_bagging_fraction": _gbm(float, "gbm.bagging_fraction"),
    "gbm_l1": _gbm(float, "gbm.lambda_l1"),
    "gbm_l2": _gbm(float, "gbm.lambda_l2"),
    "gbm_extra_trees": _gbm(bool, "gbm.extra_trees"),
    "gbm_fp_radius": _gbm(int, "gbm.fp_radius"),
    "gbm_fp_bits": _gbm(int, "gbm.fp_bits"),
    "gbm_blocks": _gbm(str, "gbm.blocks", help="'+'-joined feature blocks: morgan, rdkit2d, drfp"),
}


def feature_names(value: Any) -> list[str]:
    """``"morgan+rdkit2d"`` -> ``["morgan", "rdkit2d"]``; ``"none"``/None -> ``[]``; a list stays a list."""
    if value is None or value == "none":
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split("+") if part.strip()]
    return list(value)


def _default_features() -> str:
    return "+".join(RunConfig().model.molecule_features) or "none"


# Realistic GPU-scale defaults; study files override any entry or bound.
DEFAULT_SPACE: dict[str, Any] = {
    "family": "transformer",
    "epochs": {"low": 10, "high": 50, "step": 10},
    "architecture": "hierarchical",
    "d_model": [64, 128, 256],
    "n_layers": {"low": 2, "high": 6},
    "reaction_layers": {"low": 1, "high": 4},
    "n_heads": [2, 4, 8],
    "ffn_mult": [2, 4],
    "dropout": {"low": 0.0, "high": 0.3},
    "pooling": ["cls", "mean"],
    "lr": {"low": 1e-5, "high": 3e-3, "log": True},
    "weight_decay": {"low": 1e-6, "high": 1e-1, "log": True},
    "batch_size": [16, 32, 64],
    "use_augmentation": [False, True],
    "augment_ratio": {"low": 0.5, "high": 5.0},
    "scheduler": ["constant", "cosine", "onecycle", "linear", "step", "plateau"],
    "warmup_frac": {"low": 0.0, "high": 0.2},
    "step_gamma": {"low": 0.1, "high": 0.9},
    "grad_clip": 1.0,
    "ema_decay": RunConfig().train.ema_decay,
    "molecule_features": _default_features(),
    "feature_combine": RunConfig().model.feature_combine,
    # encoder and feature_dropout are absent on purpose: unless a study file names them, each trial takes the
    # defaults that follow its features (ModelConfig: no token encoder where there are features)
    "gbm_rounds": {"low": 200, "high": 2000, "step": 100},
    "gbm_lr": {"low": 0.01, "high": 0.2, "log": True},
    "gbm_leaves": {"low": 8, "high": 256, "log": True},
    "gbm_min_child_samples": {"low": 3, "high": 100, "log": True},
    "gbm_feature_fraction": {"low": 0.1, "high": 1.0},
    "gbm_bagging_fraction": {"low": 0.5, "high": 1.0},
    "gbm_l1": {"low": 1e-8, "high": 10.0, "log": True},
    "gbm_l2": {"low": 1e-8, "high": 10.0, "log": True},
    "gbm_extra_trees": [False, True],
    "gbm_fp_radius": [2, 3],
    "gbm_fp_bits": [512, 1024, 2048],
    "gbm_blocks": ["morgan+rdkit2d+drfp", "morgan+drfp", "rdkit2d+drfp", "morgan+rdkit2d", "drfp"],
}

_RANGE_KEYS = {"low", "high", "log", "step"}


@dataclass(frozen=True)
class Fixed:
    value: Any


@dataclass(frozen=True)
class Categorical:
    choices: tuple[Any, ...]


@dataclass(frozen=True)
class Range:
    kind: type
    low: float
    high: float
    log: bool = False
    step: float | None = None


Entry = Fixed | Categorical | Range


def _check_type(name: str, kind: type, value: Any, where: str) -> Any:
    ok = (isinstance(value, bool) if kind is bool
          else isinstance(value, int) and not isinstance(value, bool) if kind is int
          else isinstance(value, (int, float)) and not isinstance(value, bool) if kind is float
          else isinstance(value, str))
    if not ok:
        raise ConfigError(f"{where}: search_space.{name}: expected {kind.__name__}, got {value!r}")
    return float(value) if kind is float else value


def parse_entry(name: str, raw: Any, *, where: str, default: Any = None) -> Entry:
    """Turn one ``[search_space]`` entry into a typed entry, or raise naming the key."""
    if name not in PARAMS:
        raise ConfigError(f"{where}: search_space.{name}: unknown parameter; known: {', '.join(PARAMS)}")
    kind = PARAMS[name].kind
    key = f"{where}: search_space.{name}"
    if isinstance(raw, dict):
        unknown = set(raw) - _RANGE_KEYS
        if unknown:
            raise ConfigError(f"{key}: unknown key(s) {', '.join(sorted(unknown))}; a range has low, high, log, step")
        if kind in (str, bool):
            raise ConfigError(f"{key}: a {kind.__name__} parameter takes a value or a list, not a range")
        inherited = dict(default) if isinstance(default, dict) else {}
        if "low" in raw or "high" in raw:  # the default's step is a grid on the default's bounds, not these
            inherited.pop("step", None)
        merged = {**inherited, **raw}
        if "low" not in merged or "high" not in merged:
            raise ConfigError(f"{key}: a range needs both low and high")
        low = _check_type(name, kind, merged["low"], where)
        high = _check_type(name, kind, merged["high"], where)
        log = merged.get("log", False)
        if not isinstance(log, bool):
            raise ConfigError(f"{key}.log: expected true or false, got {log!r}")
        step = merged.get("step")
        if low > high:
            raise ConfigError(f"{key}: empty range (low {low} > high {high})")
        if log and low <= 0:
            raise ConfigError(f"{key}: a log range needs low > 0 (got {low})")
        if step is not None:
            step = _check_type(name, kind, step, where)
            if step <= 0:
                raise ConfigError(f"{key}.step: must be > 0 (got {step})")
            if log:
                raise ConfigError(f"{key}: step and log cannot be combined")
            if kind is int and (high - low) % step:
                raise ConfigError(f"{key}: high - low ({high - low}) is not a multiple of step {step}")
        return Range(kind, low, high, log, step)
    if name == "molecule_features":
        _check_feature_choices(raw, key)
    if isinstance(raw, list):
        if not raw:
            raise ConfigError(f"{key}: empty list of choices")
        values = tuple(_check_type(name, kind, v, where) for v in raw)
        if len(set(values)) != len(values):
            raise ConfigError(f"{key}: duplicate choices in {list(raw)}")
        _check_known_choices(name, values, key)
        return Categorical(values)
    value = _check_type(name, kind, raw, where)
    _check_known_choices(name, (value,), key)
    return Fixed(value)


def _check_known_choices(name: str, values: tuple[Any, ...], key: str) -> None:
    """Each choice of a setting with a closed set of values (family, scheduler, pooling, architecture, ...) is
    one of them: a typo fails when the file loads, not in the trial that first samples it."""
    target = PARAMS[name].target
    if target is None:
        return
    section, _, field = target.partition(".")  # "family" is RunConfig's own field
    annotation = RunConfig.model_fields[section].annotation
    if field:
        annotation = annotation.model_fields[field].annotation
    if get_origin(annotation) is not Literal:
        return
    allowed = get_args(annotation)
    bad = [v for v in values if v not in allowed]
    if bad:
        raise ConfigError(f"{key}: unknown choice {bad[0]!r}; known: {', '.join(map(str, allowed))}")


def _check_feature_choices(raw: Any, key: str) -> None:
    """Each ``molecule_features`` choice names known featurizers (``"none"`` or ``"a+b"``), none twice."""
    from yieldtune.chem.featurizers import FEATURIZERS

    for choice in raw if isinstance(raw, list) else [raw]:
        if not isinstance(choice, str):
            raise ConfigError(f"{key}: expected a string like \"morgan+rdkit2d\" or \"none\", got {choice!r}")
        names = feature_names(choice)
        unknown = [n for n in names if n not in FEATURIZERS]
        if unknown or len(set(names)) != len(names):
            raise ConfigError(f"{key}: bad choice {choice!r}; use 'none' or '+'-joined names from "
                              f"{', '.join(FEATURIZERS)}, each once")


class SearchSpace:
    """The study's parameters on top of its fixed base :class:`RunConfig`."""

    def __init__(self, entries: dict[str, Entry], base: RunConfig, *, source: str = "study") -> None:
        self.entries = entries
        self.base = base
        self.source = source

    @classmethod
    def from_spec(cls, spec: "StudySpec") -> "SearchSpace":
        where = spec.source
        raw = dict(DEFAULT_SPACE)
        for name, value in spec.search_space.items():
            raw[name] = value
        entries = {name: parse_entry(name, raw[name], where=where, default=DEFAULT_SPACE.get(name))
                   for name in PARAMS if name in raw}
        for name in spec.search_space:
            if name not in PARAMS:  # report unknown names even though the loop above skips them
                parse_entry(name, spec.search_space[name], where=where)
        fixed = _fixed_settings(spec)
        for name, entry in entries.items():  # a [fixed.*] setting beats a fixed default the file did not write
            if isinstance(entry, Fixed) and name not in spec.search_space and PARAMS[name].target in fixed:
                entries[name] = Fixed(fixed[PARAMS[name].target])
        _split_token_encoder(entries, spec.fixed, where)
        entries = {name: e for name, e in entries.items() if _can_be_active(name, entries, spec.fixed)}
        space = cls(entries, spec.fixed, source=where)
        space._check_fixed_overlap(spec)
        space._check_warm_start(spec)
        return space

    def _check_fixed_overlap(self, spec: "StudySpec") -> None:
        fixed_keys = _fixed_settings(spec)
        for name, entry in self.entries.items():
            target = PARAMS[name].target
            if target in fixed_keys and not isinstance(entry, Fixed):
                raise ConfigError(f"{self.source}: fixed.{target} is also searched as search_space.{name}; "
                                  f"set search_space.{name} = <value> instead")

    def _check_warm_start(self, spec: "StudySpec") -> None:
        for i, cfg in enumerate(spec.warm_start.configs):
            for name in cfg:
                if name not in self.searched:
                    raise ConfigError(f"{self.source}: warm_start.configs[{i}].{name}: not a searched parameter; "
                                      f"searched: {', '.join(self.searched)}")

    @property
    def families(self) -> list[str]:
        """The model families this study's trials can train."""
        entry = self.entries.get("family")
        return [str(v) for v in _possible_values(entry)] if entry is not None else ["transformer"]

    @property
    def searched(self) -> list[str]:
        return [n for n, e in self.entries.items() if not isinstance(e, Fixed)]

    def grid(self) -> dict[str, list[Any]]:
        """The grid for Optuna's GridSampler: every searched parameter must be a list."""
        bad = [n for n in self.searched if not isinstance(self.entries[n], Categorical)]
        if bad:
            raise ConfigError(f"{self.source}: sampler grid needs lists, but these are ranges: {', '.join(bad)}")
        return {n: list(self.entries[n].choices) for n in self.searched}  # type: ignore[union-attr]

    def _value(self, trial: "optuna.trial.BaseTrial", name: str) -> Any:
        entry = self.entries[name]
        if isinstance(entry, Fixed):
            return entry.value
        if isinstance(entry, Categorical):
            return trial.suggest_categorical(name, list(entry.choices))
        if entry.kind is int:
            return trial.suggest_int(name, int(entry.low), int(entry.high), step=int(entry.step or 1), log=entry.log)
        return trial.suggest_float(name, entry.low, entry.high, step=entry.step, log=entry.log)

    def _is_active(self, name: str, values: dict[str, Any]) -> bool:
        if name == "encoder" and "token_encoder" in self.entries and _needs_token_encoder(values):
            return False  # these trials sample token_encoder instead
        if name == "feature_combine" and (values.get("architecture") == "flat"
                                          or self._trial_encoder(values) == "none"):
            return False  # flat: features are summed per role; encoder none: a molecule is its features
        return PARAMS[name].is_active(values)

    def _trial_encoder(self, values: dict[str, Any]) -> str:
        """The encoder of a trial with these values: sampled, written in ``[fixed.model]``, or following its
        features as ModelConfig derives it (``encoder`` and ``token_encoder`` are sampled before what needs it)."""
        for name in ("encoder", "token_encoder"):
            if name in values and self._is_active(name, values):
                return str(values[name])
        return _unsampled_encoder(self.base, values)

    def sample(self, trial: "optuna.trial.BaseTrial") -> dict[str, Any]:
        """Suggest every active parameter (conditionals only where they act); returns name -> value."""
        values: dict[str, Any] = {}
        for name in PARAMS:
            if name in self.entries and self._is_active(name, values):
                values[name] = self._value(trial, name)
        return values

    def to_config(self, values: dict[str, Any], *, source: str | None = None) -> RunConfig:
        """Map sampled values onto the base config; derived values (heads, ffn_dim) are computed here."""
        data = self.base.model_dump()
        for name, value in values.items():
            target = PARAMS[name].target
            if target is not None and self._is_active(name, values):
                section, _, key = target.partition(".")
                if key:
                    data[section][key] = value
                else:
                    data[section] = value
        d_model = data["model"]["d_model"]
        if "n_heads" in values:
            data["model"]["n_heads"] = largest_divisor_at_most(d_model, int(values["n_heads"]))
        elif d_model % data["model"]["n_heads"]:
            data["model"]["n_heads"] = largest_divisor_at_most(d_model, data["model"]["n_heads"])
        if "ffn_mult" in values:
            data["model"]["ffn_dim"] = max(8, int(round(float(values["ffn_mult"]) * d_model)))
        if values.get("use_augmentation") is False:
            data["train"]["augment_ratio"] = 0.0
        data["model"]["molecule_features"] = feature_names(data["model"]["molecule_features"])
        sampled = {PARAMS[name].target for name in values}
        for key in DERIVED_MODEL_DEFAULTS:  # neither sampled nor written in [fixed.model]: let them follow
            if f"model.{key}" not in sampled and key not in self.base.model.model_fields_set:
                data["model"].pop(key, None)
        return validate_config(RunConfig, data, source=source or self.source)

    def suggest(self, trial: "optuna.trial.BaseTrial") -> RunConfig:
        """Sample a trial's parameters and return its typed :class:`RunConfig`."""
        return self.to_config(self.sample(trial), source=f"{self.source}: trial {getattr(trial, 'number', '?')}")

    def config_from_params(self, params: dict[str, Any]) -> RunConfig:
        """Rebuild the RunConfig of a finished trial from its ``params`` (for refits and exports)."""
        import optuna

        return self.to_config(self.sample(optuna.trial.FixedTrial(params)))


def _needs_token_encoder(values: dict[str, Any]) -> bool:
    """Whether a trial with these values cannot go without a token encoder (config.needs_token_encoder)."""
    return needs_token_encoder(feature_names(values.get("molecule_features")),
                               values.get("architecture", "hierarchical"))


def _split_token_encoder(entries: dict[str, Entry], base: RunConfig, where: str) -> None:
    """Where ``encoder`` may be ``"none"`` and some trials need a token encoder (no features, or the flat
    model), give those trials their own ``token_encoder`` (the other encoder choices, unless the file set it)."""
    if not _some_trial_needs_token_encoder(entries):
        return
    if "none" in _possible_values(entries.get("token_encoder")):
        raise ConfigError(f"{where}: search_space.token_encoder: \"none\" needs molecule features and the "
                          "hierarchical model; its trials have no features or the flat model")
    if "encoder" not in entries:
        if base.model.encoder == "none" and "encoder" in base.model.model_fields_set:
            raise ConfigError(f"{where}: fixed.model.encoder: \"none\" (a molecule is its features) needs "
                              "molecule features and the hierarchical model in every trial; drop \"none\" from "
                              "search_space.molecule_features and \"flat\" from search_space.architecture")
        return
    encoders = _possible_values(entries["encoder"])
    if "none" not in encoders or "token_encoder" in entries:
        return
    rest = [e for e in encoders if e != "none"]
    if not rest:
        raise ConfigError(f"{where}: search_space.encoder: \"none\" (a molecule is its features) needs "
                          "molecule features and the hierarchical model in every trial; drop \"none\" from "
                          "search_space.molecule_features (and \"flat\" from search_space.architecture) or add "
                          "a token encoder (\"scratch\") to search_space.encoder")
    entries["token_encoder"] = Fixed(rest[0]) if len(rest) == 1 else Categorical(tuple(rest))


def _fixed_settings(spec: "StudySpec") -> dict[str, Any]:
    """``{"section.key": value}`` for what the study file sets under ``[fixed.model]`` / ``[fixed.train]``."""
    settings = spec.fixed.model_dump(exclude_unset=True)
    out = {f"{section}.{key}": value for section, table in settings.items()
           if isinstance(table, dict) for key, value in table.items()}
    out.update({key: value for key, value in settings.items() if not isinstance(value, dict)})  # fixed.family
    return out


def _possible_values(entry: Entry) -> list[Any]:
    return [entry.value] if isinstance(entry, Fixed) else list(entry.choices) if isinstance(
        entry, Categorical) else [None]


def _trial_shapes(entries: dict[str, Entry]) -> list[dict[str, Any]]:
    """Every (molecule_features, architecture) pair the study's trials can have, as sample values."""
    return [{"molecule_features": f, "architecture": a} for f in _possible_values(entries.get("molecule_features"))
            for a in _possible_values(entries.get("architecture"))]


def _some_trial_needs_token_encoder(entries: dict[str, Entry]) -> bool:
    return any(_needs_token_encoder(values) for values in _trial_shapes(entries))


def _unsampled_encoder(base: RunConfig, values: dict[str, Any]) -> str:
    """The encoder of a trial that samples none: ``[fixed.model]``'s, else the one its features derive."""
    if "encoder" in base.model.model_fields_set:
        return base.model.encoder
    return derived_encoder(feature_names(values.get("molecule_features")), values.get("architecture", "hierarchical"))


def _some_trial_combines_features(entries: dict[str, Entry], base: RunConfig) -> bool:
    """Whether some trial has features, the hierarchical model and a token encoder (what feature_combine
    combines): such a trial samples ``encoder`` where the file searches it, else takes the unsampled one."""
    for values in _trial_shapes(entries):
        if not feature_names(values["molecule_features"]) or values["architecture"] == "flat":
            continue
        encoders = _possible_values(entries["encoder"]) if "encoder" in entries else [
            _unsampled_encoder(base, values)]
        if any(e != "none" for e in encoders):
            return True
    return False


def _can_be_active(name: str, entries: dict[str, Entry], base: RunConfig) -> bool:
    """False for a parameter no trial samples: one of a family the study never trains, a conditional one
    whose condition no value of its parent meets, ``token_encoder`` where every trial may go without one,
    ``feature_combine`` where no trial has a token encoder's vectors to combine the features with."""
    pdef = PARAMS[name]
    if pdef.family is not None and "family" in entries and pdef.family not in _possible_values(entries["family"]):
        return False
    if name == "token_encoder" and not _some_trial_needs_token_encoder(entries):
        return False
    if name == "feature_combine" and not _some_trial_combines_features(entries, base):
        return False
    parent = pdef.parent
    if parent is None or parent not in entries:
        return True
    return any(pdef.active({parent: v}) for v in _possible_values(entries[parent]))


def largest_divisor_at_most(n: int, k: int) -> int:
    """The largest divisor of ``n`` that is <= ``k`` (at least 1): an attention head count that fits."""
    for h in range(max(1, min(k, n)), 0, -1):
        if n % h == 0:
            return h
    return 1


def describe(space: SearchSpace) -> list[tuple[str, str]]:
    """(name, human description) rows, for ``tune status`` and reports."""
    rows = []
    for name, entry in space.entries.items():
        if isinstance(entry, Fixed):
            text = f"= {entry.value!r}"
        elif isinstance(entry, Categorical):
            text = "one of " + ", ".join(map(repr, entry.choices))
        else:
            text = f"[{entry.low:g}, {entry.high:g}]" + (" log" if entry.log else "") + (
                f" step {entry.step:g}" if entry.step else "")
        rows.append((name, text))
    return rows


__all__ = ["SearchSpace", "PARAMS", "DEFAULT_SPACE", "WARMUP_SCHEDULERS", "largest_divisor_at_most", "describe",
           "parse_entry"]
