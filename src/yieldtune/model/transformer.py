"""The Transformer-encoder yield regressor.

Pre-LN encoder layers that call ``F.scaled_dot_product_attention`` directly with a boolean key mask, so
torch runs its fused (flash / memory-efficient) attention kernels on CPU and GPU. Dropout is applied to
the residual branches but not to the attention weights: attention dropout forces the unfused math path,
which measured ~10x slower on CPU. The key mask keeps padding out of attention and out of pooling, so how
much a batch is padded never changes a prediction.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from yieldtune.config import ModelConfig


class ByteDropout(nn.Module):
    """Dropout that draws its CPU mask 8 bytes per 64-bit random number (``p`` rounded to 1/256).

    On CPU, ``bernoulli_`` behind ``nn.Dropout`` took a third of a whole training step at d_model 512;
    this mask costs less than half as much. On GPU the fused ``F.dropout`` is used unchanged.
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p
        self.threshold = int(round(p * 256))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        if x.device.type != "cpu":
            return F.dropout(x, self.p, training=True)
        if self.threshold == 0:
            return x
        n = x.numel()
        words = torch.randint(-(2**63), 2**63 - 1, ((n + 7) // 8,), dtype=torch.int64)
        keep = words.view(torch.uint8)[:n].view(x.shape) >= self.threshold
        return x * keep.to(x.dtype).mul_(256.0 / (256 - self.threshold))

    def extra_repr(self) -> str:
        return f"p={self.p}"


class LearnedPositions(nn.Module):
    """A trained embedding per position."""

    def __init__(self, max_len: int, d_model: int) -> None:
        super().__init__()
        self.table = nn.Embedding(max_len, d_model)
        nn.init.normal_(self.table.weight, std=0.02)

    def forward(self, length: int) -> torch.Tensor:
        return self.table.weight[:length]


class SinusoidalPositions(nn.Module):
    """Fixed sine/cosine positions (Vaswani et al.); nothing to learn, nothing stored in checkpoints."""

    def __init__(self, max_len: int, d_model: int) -> None:
        super().__init__()
        pos = torch.arange(max_len, dtype=torch.float32).unsqueeze(1)
        div = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
        table = torch.zeros(max_len, d_model)
        table[:, 0::2] = torch.sin(pos * div)
        table[:, 1::2] = torch.cos(pos * div)[:, : d_model // 2]
        self.register_buffer("table", table, persistent=False)

    def forward(self, length: int) -> torch.Tensor:
        return self.table[:length]


POSITIONAL_ENCODINGS: dict[str, Callable[[int, int], nn.Module]] = {
    "learned": LearnedPositions,
    "sinusoidal": SinusoidalPositions,
}


def cls_pool(hidden: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
    """The ``[CLS]`` position (always first, never padding)."""
    return hidden[:, 0]


def mean_pool(hidden: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
    """Mean over real tokens only (``masked_fill``, not multiply, so odd values at pads cannot leak)."""
    keep = (~pad).unsqueeze(-1)
    total = hidden.masked_fill(~keep, 0.0).sum(dim=1)
    return total / keep.sum(dim=1).clamp_min(1).to(hidden.dtype)


POOLINGS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {"cls": cls_pool, "mean": mean_pool}


class EncoderLayer(nn.Module):
    """Pre-LN Transformer block: ``x + Attn(LN(x))`` then ``x + FFN(LN(x))``, fused QKV projection."""

    def __init__(self, d_model: int, n_heads: int, ffn_dim: int, dropout: float) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.norm1 = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.ff1 = nn.Linear(d_model, ffn_dim)
        self.ff2 = nn.Linear(ffn_dim, d_model)
        self.dropout = ByteDropout(dropout)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """``keep``: bool ``[B, 1, 1, L]``, True for real tokens (the keys every query may attend to)."""
        b, length, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, length, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        attn = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)
        x = x + self.dropout(self.proj(attn.transpose(1, 2).reshape(b, length, d)))
        return x + self.dropout(self.ff2(self.dropout(F.gelu(self.ff1(self.norm2(x))))))


class YieldTransformer(nn.Module):
    """Token ids ``[B, L]`` -> standardized yield ``[B]`` (float32)."""

    def __init__(self, cfg: ModelConfig, vocab_size: int, pad_id: int = 0) -> None:
        super().__init__()
        self.cfg, self.pad_id = cfg, pad_id
        self.embed = nn.Embedding(vocab_size, cfg.d_model, padding_idx=pad_id)
        nn.init.normal_(self.embed.weight, std=0.02)
        with torch.no_grad():
            self.embed.weight[pad_id].zero_()
        self.positions = POSITIONAL_ENCODINGS[cfg.positional](cfg.max_len, cfg.d_model)
        self.dropout = ByteDropout(cfg.dropout)
        self.layers = nn.ModuleList(
            EncoderLayer(cfg.d_model, cfg.n_heads, cfg.ffn_dim, cfg.dropout) for _ in range(cfg.n_layers))
        self.norm = nn.LayerNorm(cfg.d_model)
        self.pool = POOLINGS[cfg.pooling]
        self.head = nn.Sequential(nn.Linear(cfg.d_model, cfg.d_model), nn.GELU(), ByteDropout(cfg.dropout),
                                  nn.Linear(cfg.d_model, 1))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        pad = ids == self.pad_id  # bool [B, L]: True = padding
        keep = (~pad)[:, None, None, :]  # bool mask in SDPA's convention, broadcast over heads and queries
        x = self.embed(ids) + self.positions(ids.shape[1])
        x = self.dropout(x)
        for layer in self.layers:
            x = layer(x, keep)
        x = self.norm(x)
        return self.head(self.pool(x, pad)).squeeze(-1).float()

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
