"""LR range test (Smith 2015): raise the LR exponentially each step and watch the smoothed loss.

The suggested LR is the steepest descent point of the smoothed loss curve: the LR where the loss falls
fastest, comfortably below the LR at which training diverges.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from yieldtune.config import RunConfig
from yieldtune.data.table import ReactionTable
from yieldtune.errors import DataError
from yieldtune.model.predictor import to_device
from yieldtune.model.transformer import YieldTransformer
from yieldtune.chem.tokenizer import SmilesTokenizer
from yieldtune.train.batching import bucketed_batches, encode_reactions
from yieldtune.train.device import autocast, resolve_device, resolve_precision
from yieldtune.train.trainer import param_groups, seed_everything, target_scaling


@dataclass
class LRFindResult:
    lrs: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    smoothed: list[float] = field(default_factory=list)
    suggested_lr: float | None = None
    diverged: bool = False

    def to_dict(self) -> dict:
        return {"suggested_lr": self.suggested_lr, "diverged": self.diverged, "lrs": self.lrs,
                "losses": self.losses, "smoothed": self.smoothed}


def steepest_descent_lr(lrs: list[float], smoothed: list[float], skip_start: int = 3, skip_end: int = 2) -> float | None:
    """LR at the most negative slope of smoothed loss vs log10(LR)."""
    lo, hi = skip_start, len(lrs) - skip_end
    if hi - lo < 2:
        return None
    x = np.log10(np.asarray(lrs[lo:hi]))
    y = np.asarray(smoothed[lo:hi])
    slope = np.gradient(y, x)
    return float(lrs[lo + int(np.argmin(slope))])


def lr_range_test(config: RunConfig, train: ReactionTable, *, device: str = "auto", start_lr: float = 1e-7,
                  end_lr: float = 1.0, steps: int = 100, smoothing: float = 0.98,
                  diverge_factor: float = 4.0) -> LRFindResult:
    """Train from scratch with LR growing from ``start_lr`` to ``end_lr`` over ``steps`` batches.

    Stops early once the smoothed loss exceeds ``diverge_factor`` times its best value.
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
    model = YieldTransformer.for_tokenizer(mc, tokenizer).to(dev).train()
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
            pred = model(ids)
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
        result.smoothed.append(smooth)
        best = min(best, smooth)
        if i > 5 and smooth > diverge_factor * best:
            result.diverged = True
            break
    result.suggested_lr = steepest_descent_lr(result.lrs, result.smoothed)
    return result


def lr_find_figure(result: LRFindResult):
    """Plotly figure: raw and smoothed loss vs LR on a log axis, suggested LR marked."""
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.add_trace(go.Scatter(x=result.lrs, y=result.losses, mode="lines", name="loss", opacity=0.35))
    fig.add_trace(go.Scatter(x=result.lrs, y=result.smoothed, mode="lines", name="smoothed loss"))
    if result.suggested_lr is not None:
        i = result.lrs.index(result.suggested_lr)
        fig.add_trace(go.Scatter(x=[result.lrs[i]], y=[result.smoothed[i]], mode="markers+text",
                                 name="suggested", marker={"size": 12, "symbol": "x"},
                                 text=[f"{result.suggested_lr:.2e}"], textposition="top center"))
    fig.update_layout(title="LR range test", xaxis_title="learning rate", yaxis_title="training loss (MSE, scaled)",
                      template="plotly_white")
    fig.update_xaxes(type="log")
    return fig
