"""yieldtune.model: the Transformer regressor, the saved/loaded predictor around it, its batching and device choice."""

from yieldtune.model.device import resolve_device, resolve_precision
from yieldtune.model.predictor import YieldPredictor
from yieldtune.model.transformer import POOLINGS, POSITIONAL_ENCODINGS, YieldTransformer

__all__ = ["POOLINGS", "POSITIONAL_ENCODINGS", "YieldPredictor", "YieldTransformer", "resolve_device",
           "resolve_precision"]
