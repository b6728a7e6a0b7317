"""The data of a study, prepared once per worker: loaded, validated, split into folds.

Every worker derives exactly the same splits from the study file (seeded), so trials run by different
workers on different machines are comparable and their validation predictions line up by id.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from yieldtune.data.table import DataSpec, ReactionTable
from yieldtune.errors import ConfigError
from yieldtune.study.spec import StudySpec


@dataclass
class PreparedData:
    """``folds``: (train, val) pairs — one for holdout, k for k-fold. ``test`` is never used for tuning."""

    train_all: ReactionTable
    folds: list[tuple[ReactionTable, ReactionTable]]
    test: ReactionTable | None
    source: str

    @property
    def val_all(self) -> ReactionTable:
        """All validation rows in fold order (out-of-fold rows for k-fold)."""
        out = self.folds[0][1]
        for _, val in self.folds[1:]:
            out = out.concat(val)
        return out


def _dataset_path(spec: StudySpec, ref: str, key: str) -> tuple[Path, DataSpec | None]:
    """A study-relative path if it exists, else a registry reference (``name`` or ``name:file``)."""
    from yieldtune.data.fetch import dataset_spec, parse_dataset_ref, resolve_dataset

    local = spec.resolve_path(ref)
    if local.exists():
        return local, None
    if parse_dataset_ref(ref) is None:
        raise ConfigError(f"{spec.source}: {key}: {ref!r} is neither a file (looked at {local}) nor a data set "
                          "name (see `tune data list`)")
    return resolve_dataset(ref), dataset_spec(ref)


def resolve_study_data(spec: StudySpec) -> list[Path]:
    """The local files of the study's ``dataset`` (and ``test``), fetched or generated if needed.

    ``tune run`` calls it before starting any worker, so a misspelled name is one error line, not N workers
    each dying with it in their logs."""
    refs = [(spec.data.dataset, "data.dataset")] + ([(spec.data.test, "data.test")] if spec.data.test else [])
    return [_dataset_path(spec, ref, key)[0] for ref, key in refs]


def data_spec_for(spec: StudySpec, registry_spec: DataSpec | None) -> DataSpec:
    """The registry's reading spec for named data sets, with any layout keys the study file sets on top."""
    own = spec.data.data_spec()
    if registry_spec is None:
        return own
    explicit = {k: getattr(own, k) for k in spec.data.model_fields_set if k in DataSpec.model_fields}
    return registry_spec.model_copy(update=explicit)


def load_study_tables(spec: StudySpec) -> tuple[ReactionTable, ReactionTable | None]:
    """(train rows, test rows or None) as the study file describes them."""
    from yieldtune.data.load import load_reactions, require_varying_target
    from yieldtune.data.split import split_first_n

    path, reg_spec = _dataset_path(spec, spec.data.dataset, "data.dataset")
    dspec = data_spec_for(spec, reg_spec)
    table = require_varying_target(load_reactions(path, dspec), dspec.target)
    if spec.data.shuffle_seed is not None:  # the order pandas.DataFrame.sample(frac=1, random_state=seed) gives
        import numpy as np

        table = table.subset(np.random.RandomState(spec.data.shuffle_seed).permutation(len(table)))
    test = None
    if spec.data.train_rows is not None:
        table, test = split_first_n(table, spec.data.train_rows)
    if spec.data.test:
        tpath, treg = _dataset_path(spec, spec.data.test, "data.test")
        tspec = data_spec_for(spec, treg)
        if treg is not None and treg.target is None:  # the registry knows this file is unlabelled
            tspec = tspec.model_copy(update={"target": None})
        test = load_reactions(tpath, tspec)
    if spec.data.max_rows is not None and spec.data.max_rows < len(table):
        table = table.subset(range(spec.data.max_rows))
    return table, test


def prepare_folds(spec: StudySpec) -> PreparedData:
    """Load once and split into the validation folds every trial of this study uses."""
    from yieldtune.data.split import kfold_indices, split_by_molecules, split_holdout

    train, test = load_study_tables(spec)
    v = spec.validation
    if v.scheme == "holdout":
        folds = [split_holdout(train, v.fraction, v.seed)]
    elif v.scheme == "molecules":
        folds = [split_by_molecules(train, v.fraction, v.seed, position=v.position)]
    else:
        folds = [(train.subset(tr), train.subset(va)) for tr, va in kfold_indices(len(train), v.k, v.seed)]
    return PreparedData(train, folds, test, train.source)


def prepare_data(spec: StudySpec) -> tuple[ReactionTable, ReactionTable, ReactionTable | None]:
    """(train, val, test) of the first fold (the holdout split for ``scheme = "holdout"``)."""
    data = prepare_folds(spec)
    train, val = data.folds[0]
    return train, val, data.test


__all__ = ["PreparedData", "prepare_folds", "prepare_data", "load_study_tables", "data_spec_for", "resolve_study_data"]
