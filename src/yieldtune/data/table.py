"""The in-memory form of a reaction data set that every later step consumes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field


class DataSpec(BaseModel):
    """How to read a reaction file: layout, columns and target.

    ``layout="components"``: one column per role (aichem2024). ``reactant_columns`` end up left of the
    arrow, ``agent_columns`` in the middle and ``product_columns`` on the right, joined as reaction SMILES
    ``reactants>agents>products``. ``layout="rxn"``: one reaction-SMILES column (buchwald_hartwig).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    layout: Literal["components", "rxn"] = "components"
    reactant_columns: tuple[str, ...] = ("Reactant1", "Reactant2")
    agent_columns: tuple[str, ...] = ("Additive", "Solvent")
    product_columns: tuple[str, ...] = ("Product",)
    rxn_column: str = "rxn"
    target: str | None = "Yield"
    id_column: str | None = "rxnid"
    percent: bool = Field(False, description="targets are in percent (0-100) and are divided by 100")
    delimiter: str | None = Field(None, description="None = sniff ',' / tab / ';'")

    @classmethod
    def rxn(cls, target: str | None = "yield") -> "DataSpec":
        """The single-column layout used by the buchwald_hartwig / suzuki_miyaura files."""
        return cls(layout="rxn", target=target, id_column=None)


@dataclass
class ReactionTable:
    """Validated reactions as reaction SMILES ``reactants>agents>products`` plus optional yields in [0, 1].

    ``rows`` are the 1-based data-row numbers in the source file (header is row 1, so the first reaction
    is row 2), kept so later errors and reports can point back into the file.
    """

    reactions: list[str]
    yields: np.ndarray | None = None
    ids: list[str] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    source: str = "<memory>"
    # Order-insensitive canonical reaction per row, filled by the loader (it parses every molecule anyway)
    # so duplicate detection needs no second RDKit pass; None = compute on demand.
    canonical: list[str] | None = None

    def __post_init__(self) -> None:
        n = len(self.reactions)
        if not self.ids:
            self.ids = [str(i) for i in range(n)]
        if not self.rows:
            self.rows = list(range(2, n + 2))
        if self.yields is not None:
            self.yields = np.asarray(self.yields, dtype=np.float32)
            assert len(self.yields) == n
        assert len(self.ids) == n and len(self.rows) == n
        assert self.canonical is None or len(self.canonical) == n

    def __len__(self) -> int:
        return len(self.reactions)

    @property
    def has_targets(self) -> bool:
        return self.yields is not None

    def subset(self, index) -> "ReactionTable":
        idx = np.asarray(index, dtype=np.int64)
        return ReactionTable(
            reactions=[self.reactions[i] for i in idx],
            yields=None if self.yields is None else self.yields[idx],
            ids=[self.ids[i] for i in idx],
            rows=[self.rows[i] for i in idx],
            source=self.source,
            canonical=None if self.canonical is None else [self.canonical[i] for i in idx],
        )

    def concat(self, other: "ReactionTable") -> "ReactionTable":
        ys = None
        if self.yields is not None and other.yields is not None:
            ys = np.concatenate([self.yields, other.yields])
        keys = None
        if self.canonical is not None and other.canonical is not None:
            keys = self.canonical + other.canonical
        return ReactionTable(self.reactions + other.reactions, ys, self.ids + other.ids,
                             self.rows + other.rows, self.source, keys)
