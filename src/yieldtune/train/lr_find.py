"""LR range test (Smith 2015): raise the LR exponentially each step and watch the smoothed loss.

Per-batch losses of small reaction models are noisy (one batch's MSE swings by ±50 % around the mean
predictor's), and a slope taken from such a curve lands anywhere, sometimes right after a loss spike. So the
rule reads only the robust part of the curve: the loss is smoothed by a centred running median then mean
(no lag, a single spike cannot move it), the curve is cut where it diverges, and the suggestion is
**a third of the LR at the smoothed loss's minimum** — half a decade below where training turns unstable,
Smith's base-LR rule for a maximum LR. When the minimum is not clearly below the starting loss (the fall is
within the noise: too few ``steps`` for the LR range) there is no suggestion rather than a random one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from yieldtune.chem.tokenizer import SmilesTokenizer
from yieldtune.config import RunConfig
from yieldtune.data.table import ReactionTable
from yieldtune.errors import DataError
from yieldtune.model.batching import bucketed_batches, encode_reactions
from yieldtune.model.device import autocast, resolve_device, resolve_precision
from yieldtune.model.features import MoleculeFeatures
from yieldtune.model.predictor import to_device
from yieldtune.model.transformer import YieldTransformer
from yieldtune.train.trainer import param_groups, seed_everything, target_scaling


@dataclass
class LRFindResult:
    lrs: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    smoothed: list[float] = field(default_factory=list)
    suggested_lr: float | None = None
    min_loss_lr: float | None = None
    diverged: bool = False
    note: str = ""

    def to_dict(self) -> dict:
        return {"suggested_lr": self.suggested_lr, "min_loss_lr": self.min_loss_lr, "diverged": self.diverged,
                "note": self.note, "lrs": self.lrs, "losses": self.losses, "smoothed": self.smoothed}


def smooth_losses(losses: list[float]) -> tuple[np.ndarray, int]:
    """Centred running median, then running mean, over ~a tenth of the curve; returns (curve, window)."""
    loss = np.asarray(losses, dtype=float)
    window = max(5, (len(loss) // 10) | 1)
    half = window // 2
    padded = np.pad(loss, half, mode="edge")
    median = np.median(np.lib.stride_tricks.sliding_window_view(padded, window), axis=1)
    return np.convolve(np.pad(median, half, mode="edge"), np.ones(window) / window, mode="valid"), window


def suggest_lr(lrs: list[float], losses: list[float], diverge_factor: float = 4.0,
               fraction: float = 1 / 3) -> tuple[float | None, float | None, str]:
    """(suggested LR, LR at the smoothed minimum, why there is none) from an LR range test's raw losses."""
    n = len(losses)
    if n < 10:
        return None, None, f"too few steps ({n}) to separate the loss trend from batch noise; use --steps 200"
    smoothed, window = smooth_losses(losses)
    half = window // 2
    lo, hi = half, n - half  # the ends, where the window is cut short, are not trusted
    running_min = np.minimum.accumulate(smoothed[lo:hi])
    blown = np.nonzero(smoothed[lo:hi] > diverge_factor * running_min)[0]
    if len(blown):
        hi = lo + int(blown[0])
    at_min = lo + int(np.argmin(smoothed[lo:hi]))
    start_level = float(np.median(smoothed[lo:lo + window]))
    noise = float(np.std(np.asarray(losses[:max(window, n // 5)]))) / math.sqrt(window)
    if start_level - smoothed[at_min] < 3 * noise:
        fall = start_level - smoothed[at_min]
        return None, None, (f"the loss never fell clearly below its starting level (by {fall:.3f}, "
                            f"noise {noise:.3f}); use more --steps or a wider --start/--end")
    min_lr = float(lrs[at_min])
    return min_lr * fraction, min_lr, ""


def lr_range_test(config: RunConfig, train: ReactionTable, *, device: str = "auto", start_lr: float = 1e-6,
                  end_lr: float = 1.0, steps: int = 200, smoothing: float = 0.98,
                  diverge_factor: float = 4.0) -> LRFindResult:
    """Train from scratch with LR growing from ``start_lr`` to ``end_lr`` over ``steps`` batches.

    Stops early once the (running, exponentially) smoothed loss exceeds ``diverge_factor`` times its best
    value; the suggestion is then read from the raw losses by :func:`suggest_lr`.
    """
    if not train.has_targets or len(train) == 0:
        raise DataError("lr-find needs reactions with yields", path=train.source)
    tc, mc = config.train, config.model
    dev = resolve_device(device)
    precision = resolve_precision(tc.precision, dev, mc.d_model)
    if tc.num_threads > 0:
        torch.set_num_threads(tc.num_threads)
    seed_everything(tc.seed)
    rng = np.random.default_rng(tc.seed)
    tokenizer = SmilesTokenizer.build(train.reactions)
    encoded = encode_reactions(tokenizer, train.reactions, mc.max_len)
    mean, std = target_scaling(train.yields)
    y = torch.from_numpy(((train.yields - mean) / std).astype(np.float32))
    features = MoleculeFeatures.from_config(mc)
    # the model reads its molecules' features too (encoder "none": only them)
    slot_features = features.fit_reactions(train.reactions).to(dev) if features else None
    model = YieldTransformer.for_tokenizer(mc, tokenizer, features.dim if features else 0).to(dev).train()
    optimizer = torch.optim.AdamW(param_groups(model, tc.weight_decay), lr=start_lr)
    factor = (end_lr / start_lr) ** (1.0 / max(1, steps - 1))

    result = LRFindResult()
    avg, best = 0.0, math.inf
    batches: list[np.ndarray] = []
    for i in range(steps):
        if not batches:
            batches = bucketed_batches(encoded.lengths, tc.batch_size, rng)
        idx = batches.pop()
        lr = start_lr * factor**i
        for group in optimizer.param_groups:
            group["lr"] = lr
        ids = to_device(encoded.pad(idx, tokenizer.pad_id), dev)
        with autocast(precision, dev):
            pred = model(ids, None if slot_features is None else slot_features.batch(idx))
        loss = nn.functional.mse_loss(pred.float(), y[idx].to(dev))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if tc.grad_clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
        optimizer.step()
        value = float(loss.detach())
        if not math.isfinite(value):
            result.diverged = True
            break
        avg = smoothing * avg + (1 - smoothing) * value
        smooth = avg / (1 - smoothing ** (i + 1))
        result.lrs.append(lr)
        result.losses.append(value)
        best = min(best, smooth)
        if i > 5 and smooth > diverge_factor * best:
            result.diverged = True
            break
    result.suggested_lr, result.min_loss_lr, result.note = suggest_lr(result.lrs, result.losses, diverge_factor)
    result.smoothed = smooth_losses(result.losses)[0].tolist() if result.losses else []  # the curve the rule read
    return result


def lr_find_figure(result: LRFindResult):
    """Plotly figure: raw and smoothed loss vs LR on a log axis, the minimum and the suggested LR marked."""
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.add_trace(go.Scatter(x=result.lrs, y=result.losses, mode="lines", name="loss", opacity=0.35))
    fig.add_trace(go.Scatter(x=result.lrs, y=result.smoothed, mode="lines", name="smoothed loss (centred)"))
    if result.suggested_lr is not None:
        i = result.lrs.index(result.min_loss_lr)
        fig.add_trace(go.Scatter(x=[result.lrs[i]], y=[result.smoothed[i]], mode="markers", name="smoothed minimum",
                                 marker={"size": 10}))
        fig.add_vline(x=result.suggested_lr, line_dash="dash",
                      annotation_text=f"suggested {result.suggested_lr:.2e} (minimum / 3)")
    fig.update_layout(title="LR range test", xaxis_title="learning rate", yaxis_title="training loss (MSE, scaled)",
                      template="plotly_white")
    fig.update_xaxes(type="log")
    return fig
