"""Predicting a file with an ensemble: valid rows predicted, invalid rows reported, outputs written atomically."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from yieldtune.ensemble.ensemble import Ensemble
from yieldtune.ensemble.format import FLOAT_FORMAT, write_frame_atomic
from yieldtune.files import write_atomic


def write_submission(path: str | Path, ids: Sequence[str], yields: np.ndarray) -> None:
    """The aichem2024 submission: header exactly ``rxnid,Yield``, one row per input row, input order."""
    import pandas as pd

    if len(ids) != len(yields):
        raise ValueError(f"{len(ids)} ids but {len(yields)} predictions")
    frame = pd.DataFrame({"rxnid": [str(i) for i in ids], "Yield": np.asarray(yields, dtype=np.float64)})
    write_frame_atomic(frame, path)



class FilePredictions:
    """Predictions for the valid rows of an input file, plus the rows that could not be predicted."""

    def __init__(self, path: Path, header: list[str], rows: list[tuple[int, list[str]]], delimiter: str,
                 table, problems: list, mean: np.ndarray, std: np.ndarray,
                 similarity: np.ndarray | None = None) -> None:
        self.path, self.header, self.rows, self.delimiter = path, header, rows, delimiter
        self.table, self.problems, self.mean, self.std = table, problems, mean, std
        self.similarity = similarity  # [N, 4] applicability domain (see yieldtune.model.domain) or None

    @property
    def by_row(self) -> dict[int, tuple[float, float]]:
        return {r: (float(m), float(s)) for r, m, s in zip(self.table.rows, self.mean, self.std)}

    def n_outside_domain(self, threshold: float) -> int:
        """Rows whose least familiar molecule is below ``threshold`` similarity to the training molecules."""
        if self.similarity is None:
            return 0
        return int(np.sum(self.similarity[:, -1] < threshold))

    def problem_lines(self) -> list[str]:
        return [f"{self.path}: row {p.row}, column {p.column!r}: {p.reason}" for p in self.problems]

    def write_rows(self, out: str | Path) -> None:
        """Input rows (cells unchanged) + yield_pred, yield_std; invalid rows are left out."""
        import csv
        import io

        from yieldtune.model.domain import SIMILARITY_COLUMNS

        preds = self.by_row
        sims = {} if self.similarity is None else dict(zip(self.table.rows, self.similarity))
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        extra = [] if self.similarity is None else list(SIMILARITY_COLUMNS)
        writer.writerow([*self.header, "yield_pred", "yield_std", *extra])
        for line, cells in self.rows:
            if line in preds:
                m, s = preds[line]
                sim = ["" if np.isnan(v) else f"{v:.4f}" for v in sims[line]] if sims else []
                writer.writerow([*cells, FLOAT_FORMAT % m, FLOAT_FORMAT % s, *sim])
        write_atomic(out, buf.getvalue())

    def write_predictions(self, out: str | Path) -> None:
        """``id,yield_pred,yield_std`` for the predicted rows, in input order."""
        import pandas as pd

        write_frame_atomic(pd.DataFrame({"id": list(self.table.ids), "yield_pred": self.mean.astype(np.float64),
                                         "yield_std": self.std.astype(np.float64)}), out)

    def write_submission(self, out: str | Path, id_column: str = "rxnid") -> None:
        from yieldtune.errors import DataError

        if self.problems:
            raise DataError(f"cannot write a submission: {len(self.problems)} invalid row(s), first: "
                            f"row {self.problems[0].row}, column {self.problems[0].column!r}: "
                            f"{self.problems[0].reason}", path=str(self.path))
        if id_column not in self.header:
            raise DataError(f"a submission needs an {id_column!r} column", path=str(self.path), row=1)
        k = self.header.index(id_column)
        ids = [cells[k].strip() for _, cells in self.rows]
        write_submission(out, ids, self.mean.astype(np.float64))


def input_spec(path: Path, *, layout: str | None = None, rxn_column: str | None = None,
               id_column: str | None = None):
    """How to read a file to predict: no target; layout/columns inferred from its header unless given."""
    from yieldtune.data.load import infer_spec

    spec = infer_spec(path, layout=layout, target=None)
    update: dict[str, Any] = {}
    if rxn_column:
        update["rxn_column"] = rxn_column
    if id_column:
        update["id_column"] = id_column
    return spec.model_copy(update=update) if update else spec


def predict_file(ensemble: Ensemble, path: str | Path, data_spec=None, *, tta: int | None = None,
                 seed: int = 0, batch_size: int = 256) -> FilePredictions:
    """Predict every valid row of ``path``; invalid rows (bad SMILES, ...) are collected, not predicted."""
    from yieldtune.data.load import read_csv_rows, read_reactions

    path = Path(path)
    data_spec = data_spec or input_spec(path)
    result = read_reactions(path, data_spec, drop_invalid=True)
    header, rows, delimiter = read_csv_rows(path, data_spec.delimiter)
    mean, std = ensemble.predict(result.table.reactions, tta=tta, seed=seed, batch_size=batch_size)
    similarity = ensemble.applicability(result.table.reactions)
    return FilePredictions(path, header, rows, delimiter, result.table, result.problems, mean, std, similarity)
