"""Reading, validating, splitting and fetching reaction data sets."""

from yieldtune.data.dedupe import DuplicateReport, dedupe, duplicate_report, find_duplicates
from yieldtune.data.fetch import (
    dataset_spec,
    default_cache_dir,
    download_file,
    fetch_dataset,
    resolve_dataset,
    sha256_file,
)
from yieldtune.data.load import LoadResult, infer_spec, load_reactions, read_reactions
from yieldtune.data.registry import DATASETS, Dataset, DatasetFile, get_dataset
from yieldtune.data.split import VALIDATION_SPLITS, kfold_indices, split_by_molecules, split_first_n, split_holdout
from yieldtune.data.synth import make_synthetic_plate, write_synthetic_plate
from yieldtune.data.table import DataSpec, ReactionTable
from yieldtune.data.validate import Problem, SmilesCache, canonical_reaction, split_reaction

__all__ = [
    "DATASETS", "DataSpec", "Dataset", "DatasetFile", "DuplicateReport", "LoadResult", "Problem",
    "ReactionTable", "SmilesCache", "canonical_reaction", "dataset_spec", "dedupe", "default_cache_dir",
    "download_file", "duplicate_report", "fetch_dataset", "find_duplicates", "get_dataset", "infer_spec",
    "kfold_indices", "load_reactions", "make_synthetic_plate", "read_reactions", "resolve_dataset",
    "sha256_file", "split_by_molecules", "split_first_n", "split_holdout", "split_reaction", "VALIDATION_SPLITS",
    "write_synthetic_plate",
]
