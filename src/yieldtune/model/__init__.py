"""yieldtune.model: the Transformer regressor and the saved/loaded predictor around it."""

from yieldtune.model.predictor import YieldPredictor
from yieldtune.model.transformer import POOLINGS, POSITIONAL_ENCODINGS, YieldTransformer

__all__ = ["POOLINGS", "POSITIONAL_ENCODINGS", "YieldPredictor", "YieldTransformer"]
