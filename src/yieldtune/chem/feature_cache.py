"""On-disk cache of per-molecule (or per-reaction) feature vectors, shared by every trial and worker.

One SQLite file ``features.sqlite`` in the cache directory, table ``vectors(namespace, key, dim, data)``:
``namespace`` is a featurizer's :attr:`~yieldtune.chem.featurizers.MoleculeFeaturizer.cache_key` (name,
parameters, RDKit / model version: any change misses), ``key`` a canonical SMILES, ``data`` raw float32 bytes
(never pickle). SQLite's locking (WAL, ``INSERT OR IGNORE``, a busy timeout) makes concurrent workers safe:
two processes computing the same molecule store one row and read identical bytes.

Where it lives: the caller passes the directory. Trainers and GBM models use ``<cache dir>/features`` under
the augmentation cache directory (``[artifacts] cache_dir``, default ``<artifact dir parent>/cache``, or
``tune train --cache-dir``);
:func:`default_feature_cache` gives ``$TUNE_CACHE_DIR/features`` (default ``~/.cache/yieldtune/features``).
``cache=None`` computes in memory only.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from yieldtune.chem.featurizers import MoleculeFeaturizer
from yieldtune.files import open_sqlite_wal

DB_NAME = "features.sqlite"
_BATCH = 500  # SQLite variables per query stay far below its limit


class FeatureCache:
    """Vectors keyed by ``(namespace, key)`` in ``directory/features.sqlite``."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.path = self.directory / DB_NAME
        self.hits = self.misses = 0  # this object's lookups, for tests and benchmarks

    def _connect(self) -> sqlite3.Connection:
        self.directory.mkdir(parents=True, exist_ok=True)
        con = open_sqlite_wal(self.path, timeout_s=120.0)
        con.execute("CREATE TABLE IF NOT EXISTS vectors (namespace TEXT NOT NULL, key TEXT NOT NULL, "
                    "dim INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (namespace, key))")
        return con

    def get(self, namespace: str, keys: Sequence[str]) -> dict[str, np.ndarray]:
        """Stored vectors among ``keys`` (a damaged row, whose byte length does not match, is left out)."""
        found: dict[str, np.ndarray] = {}
        keys = list(dict.fromkeys(keys))
        con = self._connect()
        try:
            for start in range(0, len(keys), _BATCH):
                part = keys[start:start + _BATCH]
                marks = ",".join("?" * len(part))
                rows = con.execute(f"SELECT key, dim, data FROM vectors WHERE namespace = ? AND key IN ({marks})",
                                   [namespace, *part])
                for key, dim, data in rows:
                    if isinstance(data, bytes) and len(data) == 4 * dim:
                        found[key] = np.frombuffer(data, dtype=np.float32)
        finally:
            con.close()
        return found

    def put(self, namespace: str, keys: Sequence[str], vectors: np.ndarray) -> None:
        """Store rows of ``vectors`` under ``keys``; a key already stored (by another worker) is kept as is."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        rows = [(namespace, k, int(v.shape[0]), v.tobytes()) for k, v in zip(keys, vectors)]
        con = self._connect()
        try:
            with con:
                con.executemany("INSERT OR IGNORE INTO vectors (namespace, key, dim, data) VALUES (?, ?, ?, ?)", rows)
        finally:
            con.close()

    def get_or_compute(self, namespace: str, keys: Sequence[str],
                       compute: Callable[[list[str]], np.ndarray]) -> np.ndarray:
        """``[len(keys), dim]`` float32: stored rows, and ``compute(missing distinct keys)`` once for the rest."""
        distinct = list(dict.fromkeys(keys))
        found = self.get(namespace, distinct)
        dims = {v.shape[0] for v in found.values()}
        if len(dims) > 1:  # cannot happen with one featurizer per namespace; recompute rather than trust it
            found = {}
        missing = [k for k in distinct if k not in found]
        self.hits += len(distinct) - len(missing)
        self.misses += len(missing)
        if missing:
            computed = np.asarray(compute(missing), dtype=np.float32)
            if found and computed.shape[1] != next(iter(found.values())).shape[0]:
                found = {}  # stale rows of another width: use the fresh computation only
                missing, computed = distinct, np.asarray(compute(distinct), dtype=np.float32)
            self.put(namespace, missing, computed)
            found.update(zip(missing, computed))
        if not keys:
            return np.asarray(compute([]), dtype=np.float32).reshape(0, -1)
        return np.stack([found[k] for k in keys]).astype(np.float32, copy=False)


def canonical_molecules(smiles: Sequence[str]) -> list[str]:
    """RDKit canonical SMILES of each molecule (unreadable ones verbatim), each distinct string parsed once."""
    from yieldtune.chem.augment import canonical_molecule

    return [canonical_molecule(s) for s in smiles]


def molecule_features(smiles: Sequence[str], featurizer: MoleculeFeaturizer,
                      cache: FeatureCache | None = None) -> np.ndarray:
    """``[len(smiles), featurizer.dim]`` float32 rows: canonicalized, featurized once per distinct molecule.

    A randomized SMILES and the canonical one get the same row. With ``cache`` the rows are read from /
    written to disk; with None they are computed in memory.
    """
    canon = canonical_molecules(smiles)
    if not canon:
        return np.zeros((0, featurizer.dim), dtype=np.float32)
    if cache is None:
        distinct = list(dict.fromkeys(canon))
        table = np.asarray(featurizer.featurize(distinct), dtype=np.float32)
        row = {k: i for i, k in enumerate(distinct)}
        return table[[row[k] for k in canon]]
    return cache.get_or_compute(featurizer.cache_key, canon, lambda keys: featurizer.featurize(keys))


def default_feature_cache() -> FeatureCache:
    """``$TUNE_CACHE_DIR/features`` (default ``~/.cache/yieldtune/features``)."""
    from yieldtune.data.fetch import default_cache_dir

    return FeatureCache(default_cache_dir() / "features")


__all__ = ["FeatureCache", "canonical_molecules", "default_feature_cache", "molecule_features"]
