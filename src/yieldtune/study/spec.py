"""The study file (``studies/*.toml``) as one typed, validated object.

Everything a worker needs to run a trial is in the study file, so any number of workers on any number of
machines agree on data, search space, sampler and pruner by reading the same file. Unknown keys are errors
and every error names the file and the key.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from yieldtune.config import RunConfig, read_toml, validate_config
from yieldtune.data.table import DataSpec
from yieldtune.errors import ConfigError

STORAGE_ENV = "TUNE_STORAGE"

# Explicit constants: a study file that leaves a key out gets exactly these, never an "auto" value.
DEFAULT_HEARTBEAT_INTERVAL = 10  # seconds between heartbeats of a running trial
DEFAULT_GRACE_PERIOD = 30  # seconds without heartbeat before a running trial is declared dead
DEFAULT_MAX_RETRY = 2  # times a trial whose worker died is re-queued
DEFAULT_N_TRIALS = 50


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataSection(DataSpec):
    """Where the reactions come from and how to read them (layout/column keys are :class:`DataSpec`'s)."""

    dataset: str = Field(description="registry name (see `tune data list`) or a path relative to the study file")
    test: str | None = Field(None, description="optional test file (path relative to the study file)")
    train_rows: int | None = Field(None, ge=1, description="first N rows are train, the rest test (standard splits)")
    max_rows: int | None = Field(None, ge=2, description="use only the first N train rows (quick studies)")
    shuffle_seed: int | None = Field(None, ge=0, description="shuffle the rows with this seed before train_rows / "
                                     "max_rows (for files in a meaningful order, e.g. aichem2024)")

    def data_spec(self) -> DataSpec:
        return DataSpec(**{k: getattr(self, k) for k in DataSpec.model_fields})


class ValidationSpec(_Strict):
    """Holdout: one random validation split of the train rows. Molecules: one validation split that holds out
    whole molecules (every validation reaction has a reactant or agent no training reaction has; see
    :func:`yieldtune.data.split.split_by_molecules`), for studies whose models must work on new molecules.
    K-fold: k models per trial, mean metric.

    With k-fold, the pruner sees fold 0's per-epoch values (all trials then compare the same fold at the
    same epoch); the trial's value is the mean of the folds' best-epoch metrics.
    """

    scheme: Literal["holdout", "molecules", "kfold"] = "holdout"
    fraction: float = Field(0.2, gt=0.0, lt=1.0,
                            description="holdout, molecules: share of train rows used for validation")
    k: int = Field(5, ge=2, le=50, description="kfold: number of folds")
    seed: int = 0
    position: int | None = Field(None, ge=1, description="molecules: hold out only molecules written K-th among "
                                 "the reactants and agents (one kind on a plate listed in one order: "
                                 "Buchwald–Hartwig's additive is the 6th)")

    @model_validator(mode="after")
    def _position_with_molecules(self) -> "ValidationSpec":
        if self.position is not None and self.scheme != "molecules":
            raise ValueError(f'position is only used with scheme = "molecules", not "{self.scheme}"')
        return self


class ObjectiveSpec(_Strict):
    """The number a trial returns: the validation metric of its best epoch (best by validation R²)."""

    metric: Literal["r2", "mae", "rmse"] = "r2"

    @property
    def direction(self) -> Literal["maximize", "minimize"]:
        return "maximize" if self.metric == "r2" else "minimize"


class TPESpec(_Strict):
    type: Literal["tpe"]
    seed: int | None = None
    n_startup_trials: int = Field(10, ge=0)
    n_ei_candidates: int = Field(24, ge=1)
    multivariate: bool = True
    group: bool = True
    constant_liar: bool = True


class RandomSpec(_Strict):
    type: Literal["random"]
    seed: int | None = None


class CmaEsSpec(_Strict):
    type: Literal["cmaes"]
    seed: int | None = None
    n_startup_trials: int = Field(1, ge=0)
    sigma0: float | None = Field(None, gt=0.0)
    restart_strategy: Literal["ipop", "bipop"] | None = None
    use_separable_cma: bool = False
    with_margin: bool = False
    consider_pruned_trials: bool = False


class QMCSpec(_Strict):
    type: Literal["qmc"]
    seed: int | None = None
    qmc_type: Literal["sobol", "halton"] = "sobol"
    scramble: bool = True


class GridSpec(_Strict):
    """Every searched parameter must be a list (categorical); the grid is their product."""

    type: Literal["grid"]
    seed: int | None = None


SamplerSpec = Annotated[TPESpec | RandomSpec | CmaEsSpec | QMCSpec | GridSpec, Field(discriminator="type")]


class MedianSpec(_Strict):
    type: Literal["median"]
    n_startup_trials: int = Field(5, ge=0)
    n_warmup_steps: int = Field(2, ge=0)
    interval_steps: int = Field(1, ge=1)
    n_min_trials: int = Field(1, ge=1)


class PercentileSpec(MedianSpec):
    type: Literal["percentile"]  # type: ignore[assignment]
    percentile: float = Field(25.0, ge=0.0, le=100.0)


class SuccessiveHalvingSpec(_Strict):
    type: Literal["successive_halving"]
    min_resource: int = Field(1, ge=1)
    reduction_factor: int = Field(4, ge=2)
    min_early_stopping_rate: int = Field(0, ge=0)
    bootstrap_count: int = Field(0, ge=0)


class HyperbandSpec(_Strict):
    type: Literal["hyperband"]
    min_resource: int = Field(1, ge=1)
    max_resource: int = Field(30, ge=1, description="the largest number of epochs a trial trains")
    reduction_factor: int = Field(3, ge=2)
    bootstrap_count: int = Field(0, ge=0)


class NoPrunerSpec(_Strict):
    type: Literal["none"]


WrappablePrunerSpec = Annotated[
    MedianSpec | PercentileSpec | SuccessiveHalvingSpec | HyperbandSpec | NoPrunerSpec,
    Field(discriminator="type"),
]


class PatientSpec(_Strict):
    """Prune only after ``patience`` epochs without improvement, and then only if ``wrapped`` agrees."""

    type: Literal["patient"]
    patience: int = Field(3, ge=0)
    min_delta: float = Field(0.0, ge=0.0)
    wrapped: WrappablePrunerSpec = NoPrunerSpec(type="none")


PrunerSpec = Annotated[
    MedianSpec | PercentileSpec | SuccessiveHalvingSpec | HyperbandSpec | PatientSpec | NoPrunerSpec,
    Field(discriminator="type"),
]


class BudgetSpec(_Strict):
    """``n_trials`` counts finished (complete + pruned) trials of ALL workers together; failed ones do not count."""

    n_trials: int = Field(DEFAULT_N_TRIALS, ge=1)
    timeout: float | None = Field(None, gt=0, description="seconds; each worker stops starting trials after this")


class StorageSpec(_Strict):
    url: str | None = None
    heartbeat_interval: int = Field(DEFAULT_HEARTBEAT_INTERVAL, ge=1)
    grace_period: int = Field(DEFAULT_GRACE_PERIOD, ge=1)
    max_retry: int = Field(DEFAULT_MAX_RETRY, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _url_shorthand(cls, data: Any) -> Any:
        return {"url": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _grace_after_heartbeat(self) -> "StorageSpec":
        if self.grace_period <= self.heartbeat_interval:
            raise ValueError(f"grace_period ({self.grace_period}) must exceed heartbeat_interval "
                             f"({self.heartbeat_interval})")
        return self


class ArtifactsSpec(_Strict):
    """Where trial files go: the local folder ``dir``, or S3 when ``url`` is set.

    With ``url`` only the trial artifacts (models, validation predictions) go to S3; the built ensemble
    (``<dir>/ensemble``), the augmentation cache and logs stay on local disk under ``dir``.
    """

    dir: str | None = Field(None, description="default: <study dir>/artifacts/<name>")
    cache_dir: str | None = Field(None, description="augmentation cache; default: <artifact dir parent>/cache")
    url: str | None = Field(None, description="s3://bucket[/prefix]: trial artifacts in S3 (needs yieldtune[s3])")
    endpoint_url: str | None = Field(None, description="S3-compatible server (MinIO, ...); default: AWS")

    @model_validator(mode="before")
    @classmethod
    def _dir_shorthand(cls, data: Any) -> Any:
        return {"dir": data} if isinstance(data, str) else data

    @field_validator("url")
    @classmethod
    def _s3_url(cls, url: str | None) -> str | None:
        if url is not None and (not url.startswith("s3://") or not url.removeprefix("s3://").split("/")[0]):
            raise ValueError(f"must look like s3://bucket or s3://bucket/prefix, not {url!r}")
        return url

    @model_validator(mode="after")
    def _endpoint_needs_url(self) -> "ArtifactsSpec":
        if self.endpoint_url and not self.url:
            raise ValueError("endpoint_url is only used with url = \"s3://...\"")
        return self


class FromStudySpec(_Strict):
    name: str
    storage: str | None = Field(None, description="default: this study's storage")
    top_k: int = Field(5, ge=1)


class WarmStartSpec(_Strict):
    """Configurations to try first: explicit parameter dicts, then the best trials of another study."""

    configs: list[dict[str, Any]] = Field(default_factory=list)
    from_study: FromStudySpec | None = None


class EnsembleSpec(BaseModel):
    """Which trials become ensemble members, how often each is refit, and how the ensemble predicts.

    After the budget the top ``top_k`` COMPLETE trials (``distinct = "params"``: no two with identical
    params; ``"none"``: any) are refit on train+validation with ``seeds`` seeds each; weights come from
    the trials' validation predictions by ``method`` (ensemble.selection.WEIGHTINGS): greedy selection with
    replacement (``rounds`` steps), the same averaged over bootstrap resamples of the rows, or the plain mean.
    With ``baseline_member`` the untuned fingerprint GBM is one more candidate of that weighting.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    top_k: int = Field(3, ge=1)
    seeds: int = Field(2, ge=1)
    distinct: Literal["params", "none"] = Field("params", description="no two members share identical params")
    tta: int = Field(0, ge=0, description="randomized SMILES copies per reaction at prediction time")
    auto: bool = Field(True, description="queue refits and build the ensemble when the budget is met")
    rounds: int = Field(50, ge=1, le=10000, description="greedy selection steps (Caruana et al. 2004)")
    method: Literal["caruana", "bagged", "mean"] = Field(
        "caruana", description="weights: greedy selection, greedy selection bagged over bootstrap resamples of "
                               "the validation rows (overfits a small hold-out less), or the plain mean")
    refit_steps: Literal["best", "full"] = Field(
        "best", description="how long a refit trains on train+validation: best = the epochs or boosting rounds "
                            "that scored best on its trial's validation rows; full = the trial's whole schedule "
                            "(train.epochs, unset: by the refit's rows; gbm.n_rounds), as the single model trains "
                            "(README Round 8: lower on the Test3/Test4 studies). Read when the refits are queued")
    baseline_member: bool = Field(
        True, description="the fingerprint LightGBM of tune bench baseline (untuned) competes for weight beside "
                          "the trials, fitted on each validation fold's training rows, and joins refit on "
                          "train+validation where it gets any (README Round 9)")


class StudySpec(_Strict):
    name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.\-]+$")
    description: str = ""
    data: DataSection
    validation: ValidationSpec = ValidationSpec()
    objective: ObjectiveSpec = ObjectiveSpec()
    search_space: dict[str, Any] = Field(default_factory=dict)
    fixed: RunConfig = RunConfig()
    sampler: SamplerSpec = TPESpec(type="tpe")
    pruner: PrunerSpec = MedianSpec(type="median")
    budget: BudgetSpec = BudgetSpec()
    storage: StorageSpec = StorageSpec()
    artifacts: ArtifactsSpec = ArtifactsSpec()
    warm_start: WarmStartSpec = WarmStartSpec()
    ensemble: EnsembleSpec = EnsembleSpec()

    _path: Path | None = PrivateAttr(default=None)
    _search: tuple | None = PrivateAttr(default=None)  # (search_space, fixed, SearchSpace)

    @property
    def path(self) -> Path | None:
        """The study file this spec was read from (relative paths in it resolve against its folder)."""
        return self._path

    @property
    def study_dir(self) -> Path:
        return self._path.parent if self._path is not None else Path.cwd()

    @property
    def source(self) -> str:
        return str(self._path) if self._path is not None else f"study {self.name}"

    @property
    def direction(self) -> str:
        return self.objective.direction

    def resolve_path(self, value: str | os.PathLike) -> Path:
        p = Path(value).expanduser()
        return p if p.is_absolute() else (self.study_dir / p)

    @property
    def artifact_dir(self) -> Path:
        if self.artifacts.dir:
            return self.resolve_path(self.artifacts.dir)
        return self.study_dir / "artifacts" / self.name

    @property
    def cache_dir(self) -> Path:
        if self.artifacts.cache_dir:
            return self.resolve_path(self.artifacts.cache_dir)
        return self.artifact_dir.parent / "cache"

    def storage_url(self, override: str | None = None) -> str:
        """override (``--storage``) > ``TUNE_STORAGE`` > the study file > sqlite next to the study file."""
        for url in (override, os.environ.get(STORAGE_ENV), self.storage.url):
            if url:
                return url
        return f"sqlite:///{(self.study_dir / f'{self.name}.db').resolve()}"

    def search(self):
        """The validated :class:`~yieldtune.study.space.SearchSpace` of this study, parsed once.

        The cache is keyed by the very ``search_space``/``fixed`` objects it was parsed from, so a
        ``model_copy`` that replaces either gets its own parse.
        """
        cached = self._search
        if cached is None or cached[0] is not self.search_space or cached[1] is not self.fixed:
            from yieldtune.study.space import SearchSpace

            cached = self._search = (self.search_space, self.fixed, SearchSpace.from_spec(self))
        return cached[2]


def parse_study_spec(data: dict[str, Any], *, source: str, path: Path | None = None) -> StudySpec:
    """Validate a study dict; errors name ``source`` and the key."""
    spec = validate_config(StudySpec, data, source=source)
    spec._path = path
    spec.search()  # search-space errors surface at load time, not in the first trial
    return spec


def load_study_spec(path: str | os.PathLike) -> StudySpec:
    """Read and validate a study file; a bare name like ``quickstart`` finds ``studies/quickstart.toml``."""
    p = Path(path)
    if not p.exists() and p.suffix == "" and (Path("studies") / f"{p}.toml").exists():
        p = Path("studies") / f"{p}.toml"
    if p.is_dir():
        raise ConfigError(f"{p}: is a directory, expected a study file (.toml)")
    p = p.resolve() if p.exists() else p
    return parse_study_spec(read_toml(p), source=str(p), path=p)


__all__ = [
    "StudySpec", "DataSection", "ValidationSpec", "ObjectiveSpec", "SamplerSpec", "PrunerSpec", "BudgetSpec",
    "StorageSpec", "ArtifactsSpec", "WarmStartSpec", "FromStudySpec", "EnsembleSpec", "load_study_spec",
    "parse_study_spec", "ConfigError",
]
