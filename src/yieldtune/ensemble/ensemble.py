"""A weighted set of predictors that answers with a mean and an uncertainty.

Members only need ``predict(reactions, *, tta, seed, batch_size) -> (mean, std)`` (what
:class:`yieldtune.model.YieldPredictor` offers), so this file knows nothing about torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np


class Predictor(Protocol):
    def predict(self, reactions, *, tta: int = 0, seed: int = 0,
                batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]: ...


@dataclass
class Member:
    """One refit model: its name in the export, the trial and seed it came from, and its weight."""

    name: str
    predictor: Predictor
    weight: float
    trial_number: int | None = None
    seed: int | None = None
    r2: float | None = None
    family: str = "transformer"


@dataclass
class Ensemble:
    """Weighted mixture of members.

    ``predict`` returns the weighted mean and the weighted spread over every (member, TTA copy)
    prediction: by the law of total variance, std² = Σ wᵢ (stdᵢ² + (meanᵢ − mean)²), where stdᵢ is
    member i's spread across its TTA copies. With one member and no TTA the std is 0.
    """

    members: list[Member]
    info: dict[str, Any] = field(default_factory=dict)
    tta: int = 0

    def __post_init__(self) -> None:
        if not self.members:
            raise ValueError("an ensemble needs at least one member")
        w = np.array([m.weight for m in self.members], dtype=np.float64)
        if np.any(w < 0) or not np.isfinite(w).all() or w.sum() <= 0:
            raise ValueError("member weights must be finite, non-negative and not all zero")

    @property
    def weights(self) -> np.ndarray:
        w = np.array([m.weight for m in self.members], dtype=np.float64)
        return w / w.sum()

    def member_predictions(self, reactions, *, tta: int | None = None, seed: int = 0,
                           batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """(means, stds), each shaped (n_reactions, n_members); members with weight 0 are skipped (NaN)."""
        tta = self.tta if tta is None else tta
        rxns = getattr(reactions, "reactions", reactions)
        n = len(rxns)
        means = np.full((n, len(self.members)), np.nan)
        stds = np.full((n, len(self.members)), np.nan)
        for j, m in enumerate(self.members):
            if m.weight <= 0:
                continue
            mu, sd = m.predictor.predict(list(rxns), tta=tta, seed=seed, batch_size=batch_size)
            means[:, j] = np.asarray(mu, dtype=np.float64)
            stds[:, j] = np.asarray(sd, dtype=np.float64)
        return means, stds

    def applicability(self, reactions) -> np.ndarray | None:
        """``[N, 4]`` nearest-neighbour Tanimoto similarity of each role's molecules to the training molecules
        (reactants, agents, products, min over roles), from the first member saved with a domain; else None."""
        rxns = list(getattr(reactions, "reactions", reactions))
        for m in self.members:
            domain = getattr(m.predictor, "domain", None)
            if domain is not None:
                return domain.similarity(rxns)
        return None

    def predict(self, reactions, *, tta: int | None = None, seed: int = 0,
                batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """Weighted mean and std per reaction (float64)."""
        means, stds = self.member_predictions(reactions, tta=tta, seed=seed, batch_size=batch_size)
        return combine(means, stds, self.weights)


def combine(means: np.ndarray, stds: np.ndarray, weights: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Weighted mixture mean/std over columns; columns with weight 0 are ignored even if NaN."""
    w = np.asarray(weights, dtype=np.float64)
    keep = w > 0
    w = w[keep] / w[keep].sum()
    mu_i, sd_i = np.asarray(means)[:, keep], np.asarray(stds)[:, keep]
    mean = mu_i @ w
    var = (sd_i ** 2 + (mu_i - mean[:, None]) ** 2) @ w
    return mean, np.sqrt(np.maximum(var, 0.0))
