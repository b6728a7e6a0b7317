"""Each LR schedule has the curve its name promises (warmup, decay, steps, plateau reductions)."""

from __future__ import annotations

import pytest
import torch

from yieldtune.config import TrainConfig
from yieldtune.errors import ConfigError
from yieldtune.train.schedulers import SCHEDULERS, build_scheduler

PEAK = 1e-3


def curve(name, total=100, per_epoch=10, metrics=None, **cfg):
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=PEAK)
    sched = build_scheduler(name, opt, total, per_epoch, TrainConfig(lr=PEAK, **cfg))
    lrs = []
    for step in range(total):
        lrs.append(sched.lr)
        opt.step()
        sched.step_batch()
        if (step + 1) % per_epoch == 0:
            sched.step_epoch(None if metrics is None else metrics[(step + 1) // per_epoch - 1])
    return lrs, sched


def test_registry_names_match_config():
    assert set(SCHEDULERS) == {"constant", "cosine", "onecycle", "linear", "step", "plateau"}
    with pytest.raises(ConfigError, match="unknown scheduler"):
        build_scheduler("nope", torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1), 10, 1, TrainConfig())


def test_constant_without_and_with_warmup():
    lrs, _ = curve("constant", warmup_frac=0.0)
    assert all(lr == pytest.approx(PEAK) for lr in lrs)
    lrs, _ = curve("constant", warmup_frac=0.1)
    assert lrs[0] < 0.2 * PEAK and lrs[9] < PEAK
    assert all(a < b for a, b in zip(lrs[:10], lrs[1:11]))  # rises monotonically
    assert lrs[10] == pytest.approx(PEAK) and lrs[-1] == pytest.approx(PEAK)


def test_cosine_warms_up_then_ends_near_zero():
    lrs, _ = curve("cosine", warmup_frac=0.1)
    assert lrs[0] < 0.2 * PEAK and max(lrs) == pytest.approx(PEAK)
    assert lrs.index(max(lrs)) == 10
    assert lrs[-1] < 0.01 * PEAK
    assert lrs[55] == pytest.approx(0.5 * PEAK, rel=0.05)  # halfway through the decay
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))


def test_linear_decays_linearly():
    lrs, _ = curve("linear", warmup_frac=0.0)
    assert lrs[0] == pytest.approx(PEAK) and lrs[50] == pytest.approx(0.5 * PEAK) and lrs[-1] < 0.02 * PEAK


def test_step_halves_every_step_size():
    lrs, _ = curve("step", warmup_frac=0.0, step_size_frac=0.3, step_gamma=0.5)  # 10 epochs -> every 3
    assert lrs[0] == pytest.approx(PEAK) and lrs[29] == pytest.approx(PEAK)
    assert lrs[30] == pytest.approx(PEAK / 2) and lrs[60] == pytest.approx(PEAK / 4)
    assert lrs[90] == pytest.approx(PEAK / 8)


def test_onecycle_rises_then_anneals_far_below_start():
    lrs, sched = curve("onecycle", warmup_frac=0.25)
    assert lrs[0] == pytest.approx(PEAK / 25)
    assert lrs.index(max(lrs)) == 25 and max(lrs) == pytest.approx(PEAK)
    assert sched.lr < lrs[0] / 1000  # after the last step


def test_plateau_reduces_when_metric_stalls():
    improving = [0.1 * i for i in range(10)]
    lrs, _ = curve("plateau", warmup_frac=0.0, plateau_patience=1, plateau_factor=0.5, metrics=improving)
    assert all(lr == pytest.approx(PEAK) for lr in lrs)
    stalled = [0.5, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6]
    lrs, sched = curve("plateau", warmup_frac=0.0, plateau_patience=1, plateau_factor=0.5, metrics=stalled)
    # best 0.6 at epoch 2; epochs 3 and 4 do not improve -> more than patience=1 bad epochs -> halve
    assert lrs[39] == pytest.approx(PEAK)
    assert lrs[40] == pytest.approx(PEAK / 2)
    assert sched.lr < PEAK / 4


def test_plateau_with_warmup_keeps_reductions():
    stalled = [0.5] * 10
    lrs, _ = curve("plateau", warmup_frac=0.1, plateau_patience=0, plateau_factor=0.5, metrics=stalled)
    assert lrs[0] < 0.2 * PEAK
    assert lrs[-1] < PEAK / 8  # warmup's LambdaLR did not overwrite the plateau reductions
