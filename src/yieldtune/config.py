"""Typed, validated configuration objects.

One :class:`RunConfig` travels from the study file (or ``tune train --config/--set``) to the trainer;
nothing deep inside reads raw dicts. Unknown keys are errors, and every validation error names its key.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from yieldtune.errors import ConfigError

Architecture = Literal["hierarchical", "flat"]
Pooling = Literal["cls", "mean"]
Positional = Literal["learned", "sinusoidal"]
Precision = Literal["auto", "bf16", "fp16", "fp32"]
FeatureName = Literal["morgan", "rdkit2d", "pretrained"]
FeatureCombine = Literal["add", "concat", "gate"]
Encoder = Literal["scratch", "pretrained", "none"]
SchedulerName = Literal["constant", "cosine", "onecycle", "linear", "step", "plateau"]
Family = Literal["transformer", "gbm"]
AugmentScope = Literal["molecule", "reaction"]
KeepEpoch = Literal["best", "last"]
DEFAULT_FEATURES: tuple[str, ...] = ("morgan",)
# the GBM feature blocks (see yieldtune.model.gbm); a configuration uses a "+"-joined non-empty subset
GBM_BLOCKS = ("morgan", "rdkit2d", "drfp")
DEFAULT_EPOCHS = 60  # train.epochs unset: the most a run trains (a plate of a few thousand reactions gets them all)
# ModelConfig derives these from the rest when they are not given (see its validator)
DERIVED_MODEL_DEFAULTS = ("encoder", "feature_dropout")


def needs_token_encoder(molecule_features: Any, architecture: str) -> bool:
    """Without features, or in the flat model, a molecule cannot be its features: ``encoder = "none"`` does
    not work there (the one rule behind ModelConfig's derived encoder, its check and the search space's
    ``token_encoder``)."""
    return not molecule_features or architecture != "hierarchical"


def derived_encoder(molecule_features: Any, architecture: str) -> str:
    """The encoder a model gets unless it is given: none where it can be (a molecule is its features), else the
    token encoder trained from scratch (ModelConfig, and the search space for trials that sample none)."""
    return "scratch" if needs_token_encoder(molecule_features, architecture) else "none"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelConfig(_Strict):
    """Shape of the Transformer encoder regressor.

    The defaults (with :class:`TrainConfig`'s) are a small model that trains in minutes on a CPU and reaches
    test R² 0.94 on the Buchwald-Hartwig random split; studies search around them.

    ``architecture="hierarchical"`` encodes every molecule of a reaction on its own (``n_layers`` over its
    tokens) and then the reaction as a set of molecules (``reaction_layers``); ``"flat"`` runs ``n_layers``
    over the whole reaction SMILES as one sequence.

    ``molecule_features`` (see :mod:`yieldtune.chem.featurizers`) adds RDKit / pretrained features per
    molecule: projected to ``d_model`` and combined with each molecule's pooled token vector
    (``feature_combine``) before the reaction layers; in the flat model summed per role into the pooled vector.
    ``encoder = "pretrained"`` replaces the token encoder by rxnmapper's ALBERT (hidden 256, fine-tuned);
    ``encoder = "none"`` has no token encoder at all: a molecule is its projected features (hierarchical only),
    so the reaction layers see chemistry, not learned identities.
    """

    architecture: Architecture = "hierarchical"
    d_model: int = Field(64, ge=8, le=4096)
    n_layers: int = Field(2, ge=1, le=48)
    reaction_layers: int = Field(2, ge=0, le=48, description="hierarchical: layers across the molecules of a reaction")
    n_heads: int = Field(4, ge=1, le=64)
    ffn_dim: int = Field(256, ge=8, le=32768)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    pooling: Pooling = "mean"
    positional: Positional = "learned"
    max_len: int = Field(512, ge=16, le=8192)
    # chosen on validation rows that hold out molecules, Buchwald-Hartwig Test1-4, three seeds (README, Round 4):
    # morgan features alone, no token encoder, feature dropout 0.5: mean validation R2 0.772 against 0.748 for
    # the previous default (the same features added to a token encoder), a paired lead of 0.025 +- 0.010
    molecule_features: tuple[FeatureName, ...] = Field(DEFAULT_FEATURES,
                                                       description="per-molecule featurizers; [] for none")
    feature_combine: FeatureCombine = "add"
    feature_dropout: float = Field(0.5, ge=0.0, lt=1.0,
                                   description="training: dropout on each molecule's feature values before the "
                                               "projection (a plate has few distinct molecules to learn it from); "
                                               "unless given, 0.5 with encoder none and 0 with a token encoder")
    silence_unseen_features: bool = Field(
        False, description="zero the projection's weights for feature columns that are 0 on every training "
                           "molecule (Morgan bits no training molecule has): they get no gradient, so they would "
                           "keep their random initial weights and add noise for a new molecule that has them")
    morgan_radius: int = Field(2, ge=0, le=8)
    morgan_bits: int = Field(2048, ge=16, le=65536)
    encoder: Encoder = Field("none", description="none: a molecule is its projected features; scratch / "
                                                 "pretrained: a token encoder reads its SMILES too; unless given, "
                                                 "none where there are features and the model is hierarchical")

    @model_validator(mode="after")
    def _heads_divide_d_model(self) -> "ModelConfig":
        # Unless given, the encoder is "none" where there are features and the model is hierarchical, else the
        # token encoder ("scratch": with no features there is nothing else to read), and feature_dropout is
        # what each was measured with (0.5 without a token encoder, 0 with one). Set in place, so that they
        # stay out of model_fields_set: a study file's [fixed] tables list only what the file wrote.
        if "encoder" not in self.model_fields_set:
            object.__setattr__(self, "encoder", derived_encoder(self.molecule_features, self.architecture))
        if "feature_dropout" not in self.model_fields_set:
            object.__setattr__(self, "feature_dropout", 0.5 if self.encoder == "none" else 0.0)
        if self.d_model % self.n_heads:
            raise ValueError(f"model.n_heads ({self.n_heads}) must divide model.d_model ({self.d_model})")
        if self.encoder == "pretrained" and self.max_len > 512:
            raise ValueError(f"model.max_len ({self.max_len}) must be <= 512 with model.encoder = \"pretrained\" "
                             "(the ALBERT's positions)")
        if self.encoder == "none" and needs_token_encoder(self.molecule_features, self.architecture):
            raise ValueError("model.encoder = \"none\" needs model.molecule_features and "
                             "model.architecture = \"hierarchical\" (a molecule is its features)")
        if len(set(self.molecule_features)) != len(self.molecule_features):
            raise ValueError(f"model.molecule_features lists a featurizer twice: {list(self.molecule_features)}")
        return self


class TrainConfig(_Strict):
    """How one configuration is trained."""

    epochs: int | None = Field(
        None, ge=1, le=10000,
        description="epochs to train; unset = by data size: 60, or fewer where that would show more than "
                    "train.reaction_budget training reactions (epochs_for)")
    reaction_budget: int = Field(
        200_000, ge=1, le=10**9,
        description="with train.epochs unset: about this many training reactions seen (epochs x rows, augmented "
                    "copies not counted), at most 60 epochs; 60 epochs of 20,000 reactions memorize them "
                    "(README Round 8)")
    batch_size: int = Field(32, ge=1, le=65536)
    lr: float = Field(1e-3, gt=0.0, le=1.0)
    weight_decay: float = Field(0.01, ge=0.0, le=1.0)
    scheduler: SchedulerName = "cosine"
    warmup_frac: float = Field(0.05, ge=0.0, lt=1.0)
    step_size_frac: float = Field(0.3, gt=0.0, le=1.0,
                                  description="step scheduler: decay every this fraction of epochs")
    step_gamma: float = Field(0.5, gt=0.0, le=1.0)
    plateau_patience: int = Field(3, ge=0)
    plateau_factor: float = Field(0.5, gt=0.0, lt=1.0)
    augment_ratio: float = Field(0.0, ge=0.0, le=100.0,
                                 description="expected extra randomized copies per reaction per epoch")
    augment_variants: int = Field(0, ge=0, le=256,
                                  description="randomized variants cached per reaction; 0 = derive from augment_ratio")
    augment_scope: AugmentScope = Field(
        "molecule", description="molecule: the k-th variant of every reaction spells each molecule alike, so the "
                                "hierarchical model has fewer distinct spellings per batch to encode; reaction: "
                                "every reaction's molecules randomized on their own")
    grad_clip: float = Field(1.0, ge=0.0)
    ema_decay: float = Field(0.0, ge=0.0, lt=1.0,
                             description="validate and keep an exponential moving average of the weights "
                                         "(per step; 0 = off, 0.999 averages about the last 1,000 steps)")
    early_stopping_patience: int = Field(0, ge=0, description="0 disables early stopping")
    keep_epoch: KeepEpoch = Field(
        "best", description="the weights a run keeps: best = the epoch with the best validation R2 (refits train "
                            "that many epochs); last = the final epoch's (the schedule's end point), so a "
                            "validation set of a few held-out molecules only reports and never picks an epoch")
    seed: int = 0
    precision: Precision = "auto"
    num_threads: int = Field(0, ge=0, description="torch CPU threads; 0 = leave torch's default")

    def epochs_for(self, n_rows: int) -> int:
        """The epochs a run on ``n_rows`` training reactions trains: ``epochs`` where given, else
        ``DEFAULT_EPOCHS`` cut to about ``reaction_budget`` reactions seen (at least one epoch)."""
        if self.epochs is not None:
            return self.epochs
        return max(1, min(DEFAULT_EPOCHS, int(self.reaction_budget / max(1, n_rows) + 0.5)))


class GBMConfig(_Strict):
    """A LightGBM regressor on reaction fingerprints and descriptors (``family = "gbm"``).

    Boosting stops early on the validation fold (``early_stopping_rounds``) and reports validation R² to the
    pruner every ``report_every`` rounds; a refit trains exactly the rounds its trial found best.
    """

    n_rounds: int = Field(1000, ge=1, le=100000, description="boosting rounds at most")
    early_stopping_rounds: int = Field(50, ge=0, description="0 disables early stopping")
    learning_rate: float = Field(0.05, gt=0.0, le=1.0)
    num_leaves: int = Field(63, ge=2, le=131072)
    min_child_samples: int = Field(20, ge=1)
    feature_fraction: float = Field(0.5, gt=0.0, le=1.0)
    bagging_fraction: float = Field(0.8, gt=0.0, le=1.0)
    lambda_l1: float = Field(0.0, ge=0.0)
    lambda_l2: float = Field(0.0, ge=0.0)
    extra_trees: bool = Field(False, description="LightGBM's extremely randomized trees: one random threshold per "
                                                 "feature and split (on 0/1 columns such as DRFP's: no change)")
    fp_radius: int = Field(2, ge=1, le=6, description="Morgan and DRFP radius")
    fp_bits: int = Field(1024, ge=64, le=16384, description="Morgan and DRFP folded length")
    blocks: str = Field("morgan+rdkit2d+drfp", description="feature blocks, '+'-joined: morgan, rdkit2d, drfp")
    report_every: int = Field(10, ge=1, description="rounds between validation reports to the pruner")
    seed: int = 0
    num_threads: int = Field(0, ge=0, description="LightGBM threads; 0 = the worker's CPU share (torch's threads)")

    @model_validator(mode="after")
    def _known_blocks(self) -> "GBMConfig":
        parts = self.blocks.split("+")
        bad = [p for p in parts if p not in GBM_BLOCKS]
        if bad or not parts or len(set(parts)) != len(parts):
            raise ValueError(f"gbm.blocks {self.blocks!r}: expected a '+'-joined subset of {', '.join(GBM_BLOCKS)}")
        return self

    @property
    def block_list(self) -> tuple[str, ...]:
        return tuple(b for b in GBM_BLOCKS if b in self.blocks.split("+"))


class RunConfig(_Strict):
    """Everything needed to train one configuration: the model family and that family's settings."""

    family: Family = "transformer"
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    gbm: GBMConfig = GBMConfig()

    def with_overrides(self, assignments: list[str] | dict[str, Any]) -> "RunConfig":
        """Return a copy with ``section.key=value`` assignments applied (``--set model.d_model=256``)."""
        # values equal to their default are left out, so that defaults which follow other settings (the encoder
        # follows the features) follow the overridden ones
        data = self.model_dump(exclude_defaults=True)
        sections = {name: type(getattr(self, name)).model_fields for name in ("model", "train", "gbm")}
        items = assignments.items() if isinstance(assignments, dict) else (_split_assignment(a) for a in assignments)
        for key, value in items:
            section, _, name = key.partition(".")
            if section == "family" and not name:
                data["family"] = _parse_scalar(value) if isinstance(value, str) else value
                continue
            if section not in sections or not name:
                raise ConfigError(f"unknown setting {key!r}: use family, model.<key>, train.<key> or gbm.<key>")
            if name not in sections[section]:
                raise ConfigError(f"unknown setting {key!r}; known: {', '.join(sorted(sections[section]))}")
            data.setdefault(section, {})[name] = _parse_scalar(value) if isinstance(value, str) else value
        return validate_config(RunConfig, data, source="--set")


def _split_assignment(text: str) -> tuple[str, str]:
    key, eq, value = text.partition("=")
    if not eq or not key.strip():
        raise ConfigError(f"--set expects key=value, got {text!r}")
    return key.strip(), value.strip()


def _parse_scalar(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def format_validation_error(err: ValidationError, source: str) -> str:
    """One line naming the source and each bad key."""
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        elif e["type"] in ("tuple_type", "list_type") and isinstance(e.get("input"), str):
            msg = (f"expected a list such as [\"morgan\", \"rdkit2d\"], got {e['input']!r} "
                   "(quote each item; on a shell command line, quote the whole KEY=VALUE in single quotes)")
        parts.append(f"{loc}: {msg}")
    return f"{source}: " + "; ".join(parts)


def validate_config(cls: type[BaseModel], data: dict[str, Any], *, source: str):
    """Build ``cls`` from ``data`` or raise :class:`ConfigError` naming ``source`` and the keys."""
    try:
        return cls.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, source)) from None


def read_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML file, turning missing files and syntax errors into :class:`ConfigError`."""
    p = Path(path)
    try:
        with p.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{p}: file not found") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{p}: malformed TOML: {err}") from None


def load_run_config(path: str | Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    """Load a RunConfig from a TOML file with ``[model]``/``[train]`` tables, then apply overrides."""
    cfg = RunConfig() if path is None else validate_config(RunConfig, read_toml(path), source=str(path))
    return cfg.with_overrides(overrides) if overrides else cfg
