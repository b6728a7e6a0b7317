"""The Transformer-encoder yield regressor.

Two architectures share the token encoder. ``flat`` reads the whole reaction SMILES as one sequence.
``hierarchical`` (the default) cuts the token sequence at ``.`` and ``>`` into molecules, encodes each
distinct molecule of a batch once (positions restart in every molecule, so a molecule reads the same in any
reaction), mean-pools it to one vector, adds its role (reactant / agent / product) and runs
``reaction_layers`` over the reaction as a *set* of molecules: interactions between molecules, the thing
yields depend on, are learned at molecule level, and a shared reagent costs one encoding per batch.

Pre-LN encoder layers that call ``F.scaled_dot_product_attention`` directly with a boolean key mask, so
torch runs its fused (flash / memory-efficient) attention kernels on CPU and GPU. Dropout is applied to
the residual branches but not to the attention weights: attention dropout forces the unfused math path,
which measured ~10x slower on CPU. The key mask keeps padding out of attention and out of pooling, so how
much a batch is padded never changes a prediction.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from yieldtune.config import ModelConfig

if TYPE_CHECKING:  # pragma: no cover
    from yieldtune.chem.tokenizer import SmilesTokenizer

N_ROLES = 3  # reactants > agents > products


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


@dataclass
class MoleculeBatch:
    """A batch of reactions cut into molecules, each distinct molecule once."""

    tokens: torch.Tensor  # [U, Lm] token ids of the distinct molecules, shortest first, PAD-padded
    index: torch.Tensor  # [B, K] row of ``tokens`` for molecule slot k of reaction b (0 where absent)
    present: torch.Tensor  # [B, K] bool: the slot holds a molecule
    roles: torch.Tensor  # [B, K] 0 reactant, 1 agent, 2 product
    chunks: list[tuple[int, int, int]]  # (first row, end row, width): rows of similar length, encoded together


def split_molecules(ids: torch.Tensor, *, pad_id: int, cls_id: int, dot_id: int, arrow_id: int,
                    max_chunks: int = 8, min_chunk_rows: int = 8) -> MoleculeBatch:
    """Cut ``[B, L]`` reaction token ids at ``.`` and ``>`` into molecules, vectorized, deduplicated.

    Slot k of a reaction is the k-th stretch between separators (empty stretches, as between ``>>``, are
    absent); a molecule's role is the number of ``>`` before it. PAD and CLS belong to no molecule.
    The distinct molecules are sorted by length and cut into up to ``max_chunks`` chunks, each padded only to
    its own longest molecule: one padded matrix for all would be mostly padding (a ligand is 10x a base).
    """
    b = ids.shape[0]
    boundary = (ids == dot_id) | (ids == arrow_id)
    atom = ~(boundary | (ids == pad_id) | (ids == cls_id))
    slot = boundary.long().cumsum(1)
    k = int(slot.max()) + 1 if ids.numel() else 1
    counts = torch.zeros(b, k, dtype=torch.long, device=ids.device).scatter_add_(1, slot, atom.long())
    start = counts.cumsum(1) - counts
    pos = atom.long().cumsum(1) - 1 - start.gather(1, slot)
    width = max(1, int(counts.max())) if counts.numel() else 1
    rows = torch.arange(b, device=ids.device)[:, None] * k + slot
    mols = ids.new_full((b * k, width), pad_id)
    mols[rows[atom], pos[atom]] = ids[atom]
    roles = torch.zeros(b * k, dtype=torch.long, device=ids.device)
    roles[rows[atom]] = (ids == arrow_id).long().cumsum(1)[atom].clamp_(max=N_ROLES - 1)
    present = counts.view(-1) > 0
    tokens, inverse = torch.unique(mols[present], dim=0, return_inverse=True)
    lengths = (tokens != pad_id).sum(1)
    order = torch.argsort(lengths, stable=True)
    rank = torch.empty_like(order)
    rank[order] = torch.arange(len(order), device=ids.device)
    tokens, lengths = tokens[order], lengths[order].tolist()
    index = torch.zeros(b * k, dtype=torch.long, device=ids.device)
    index[present] = rank[inverse]
    n = len(lengths)
    n_chunks = max(1, min(max_chunks, n // max(1, min_chunk_rows)))
    bounds = [round(i * n / n_chunks) for i in range(n_chunks + 1)]
    chunks = [(lo, hi, lengths[hi - 1]) for lo, hi in zip(bounds, bounds[1:]) if hi > lo]
    return MoleculeBatch(tokens, index.view(b, k), present.view(b, k), roles.view(b, k), chunks)


class YieldTransformer(nn.Module):
    """Token ids ``[B, L]`` -> standardized yield ``[B]`` (float32).

    ``separators`` are the token ids of ``(CLS, ".", ">")``, which the hierarchical architecture needs to
    find molecules; :meth:`for_tokenizer` fills them from a :class:`SmilesTokenizer`.
    """

    def __init__(self, cfg: ModelConfig, vocab_size: int, pad_id: int = 0,
                 separators: tuple[int, int, int] | None = None, feature_dim: int = 0,
                 tokens: list[str] | None = None) -> None:
        super().__init__()
        self.cfg, self.pad_id, self.feature_dim = cfg, pad_id, feature_dim
        if feature_dim and separators is None:
            raise ValueError("molecule features need the separator token ids (use for_tokenizer)")
        self.hierarchical = cfg.architecture == "hierarchical"
        if self.hierarchical and separators is None:
            raise ValueError("the hierarchical architecture needs the separator token ids (use for_tokenizer)")
        self.separators = separators
        self.pretrained = cfg.encoder == "pretrained"
        self.tokens_encoded = cfg.encoder != "none"
        if self.pretrained:
            self._init_albert(tokens)
        elif self.tokens_encoded:
            self.embed = nn.Embedding(vocab_size, cfg.d_model, padding_idx=pad_id)
            nn.init.normal_(self.embed.weight, std=0.02)
            with torch.no_grad():
                self.embed.weight[pad_id].zero_()
            self.positions = POSITIONAL_ENCODINGS[cfg.positional](cfg.max_len, cfg.d_model)
            self.layers = nn.ModuleList(
                EncoderLayer(cfg.d_model, cfg.n_heads, cfg.ffn_dim, cfg.dropout) for _ in range(cfg.n_layers))
        self.dropout = ByteDropout(cfg.dropout)
        self.norm = nn.LayerNorm(cfg.d_model)
        if self.hierarchical:
            self.roles = nn.Embedding(N_ROLES, cfg.d_model)
            nn.init.normal_(self.roles.weight, std=0.02)
            self.reaction_layers = nn.ModuleList(
                EncoderLayer(cfg.d_model, cfg.n_heads, cfg.ffn_dim, cfg.dropout) for _ in range(cfg.reaction_layers))
            self.reaction_norm = nn.LayerNorm(cfg.d_model)
            if cfg.pooling == "cls":
                self.reaction_cls = nn.Parameter(torch.randn(cfg.d_model) * 0.02)
        self.pool = POOLINGS[cfg.pooling]
        self.head = nn.Sequential(nn.Linear(cfg.d_model, cfg.d_model), nn.GELU(), ByteDropout(cfg.dropout),
                                  nn.Linear(cfg.d_model, 1))
        if feature_dim:
            d = cfg.d_model
            self.feature_proj = nn.Sequential(nn.Linear(feature_dim, d), nn.GELU(), nn.Linear(d, d))
            if self.hierarchical and self.tokens_encoded and cfg.feature_combine != "add":
                # concat: the combined vector; gate: the gate's logits (without a token encoder a molecule is its
                # projected features: nothing to combine them with)
                self.feature_mix = nn.Linear(2 * d, d)
            if not self.hierarchical:
                self.feature_roles = nn.Linear(N_ROLES * d, d)

    @classmethod
    def for_tokenizer(cls, cfg: ModelConfig, tokenizer: "SmilesTokenizer", feature_dim: int = 0) -> "YieldTransformer":
        """The model for ``tokenizer``'s vocabulary (its PAD, CLS and separator ids)."""
        seps = (tokenizer.cls_id, tokenizer.index["."], tokenizer.index[">"])
        return cls(cfg, tokenizer.vocab_size, tokenizer.pad_id, seps, feature_dim, tokenizer.tokens)

    def silence_feature_columns(self, columns: torch.Tensor) -> None:
        """Zero the feature projection's input weights of ``columns`` (bool ``[feature_dim]``). A column that is
        0 on every training molecule gets exactly zero gradient (and AdamW leaves a zero weight at zero), so
        these weights stay 0: a new molecule's never-seen bits change nothing, as a GBM never splits on them."""
        with torch.no_grad():
            self.feature_proj[0].weight[:, columns.to(self.feature_proj[0].weight.device)] = 0.0

    def _init_albert(self, tokens: list[str] | None) -> None:
        """``encoder = "pretrained"``: rxnmapper's ALBERT (fine-tuned here) reads the tokens; our token ids
        map to its vocabulary through a fixed table (unknown tokens to its ``[UNK]``); its 256-wide states are
        projected to ``d_model`` when that differs."""
        from yieldtune.chem.featurizers import load_albert

        if tokens is None:
            raise ValueError("the pretrained encoder needs the tokenizer's tokens (use for_tokenizer)")
        albert, vocab = load_albert()
        self.albert = copy.deepcopy(albert).train()
        ids = [vocab.get(t, vocab["[UNK]"]) for t in tokens]
        ids[self.pad_id] = vocab["[PAD]"]
        self.register_buffer("albert_ids", torch.tensor(ids, dtype=torch.long), persistent=False)
        hidden = albert.config.hidden_size
        self.albert_proj = nn.Identity() if hidden == self.cfg.d_model else nn.Linear(hidden, self.cfg.d_model)

    def _split(self, ids: torch.Tensor) -> MoleculeBatch:
        cls_id, dot_id, arrow_id = self.separators
        return split_molecules(ids, pad_id=self.pad_id, cls_id=cls_id, dot_id=dot_id, arrow_id=arrow_id)

    def _slot_features(self, features: torch.Tensor, k: int, dtype: torch.dtype) -> torch.Tensor:
        """Projected ``[B, K, d]`` features, their slot count cut or zero-padded to the token slots' ``k``."""
        if features.shape[1] < k:
            features = F.pad(features, (0, 0, 0, k - features.shape[1]))
        features = features[:, :k]
        if self.training and self.cfg.feature_dropout > 0:
            features = F.dropout(features, self.cfg.feature_dropout, training=True)
        return self.feature_proj(features.to(dtype))

    def _combine(self, x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        """Molecule vectors ``x`` and projected features ``f`` -> the molecule's input to the reaction layers."""
        how = self.cfg.feature_combine
        if how == "add":
            return x + f
        both = torch.cat([x, f], dim=-1)
        if how == "concat":
            return self.feature_mix(both)
        return x + torch.sigmoid(self.feature_mix(both)) * f

    def _encode_tokens(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``[N, L]`` ids -> normalized hidden states ``[N, L, d]`` and the padding mask."""
        pad = ids == self.pad_id  # bool [N, L]: True = padding
        if self.pretrained:
            out = self.albert(input_ids=self.albert_ids[ids], attention_mask=(~pad).long()).last_hidden_state
            return self.norm(self.albert_proj(out)), pad
        keep = (~pad)[:, None, None, :]  # bool mask in SDPA's convention, broadcast over heads and queries
        x = self.dropout(self.embed(ids) + self.positions(ids.shape[1]))
        for layer in self.layers:
            x = layer(x, keep)
        return self.norm(x), pad

    def forward(self, ids: torch.Tensor, features: torch.Tensor | None = None) -> torch.Tensor:
        """``features``: ``[B, K', F]`` rows per molecule slot (see :class:`yieldtune.model.features.SlotFeatures`);
        required when the model was built with ``feature_dim``."""
        if self.feature_dim and features is None:
            raise ValueError("this model was trained with molecule features: pass features")
        if not self.hierarchical:
            hidden, pad = self._encode_tokens(ids)
            pooled = self.pool(hidden, pad)
            if self.feature_dim:
                mols = self._split(ids)
                f = self._slot_features(features, mols.present.shape[1], pooled.dtype)
                f = f * mols.present.unsqueeze(-1).to(f.dtype)
                per_role = f.new_zeros(f.shape[0], N_ROLES, f.shape[2]).scatter_add(
                    1, mols.roles.unsqueeze(-1).expand_as(f), f)  # [B, 3, d]: features summed per role
                pooled = pooled + self.feature_roles(per_role.flatten(1))
            return self.head(pooled).squeeze(-1).float()
        mols = self._split(ids)
        if self.tokens_encoded:
            parts = []
            for lo, hi, width in mols.chunks:
                hidden, pad = self._encode_tokens(mols.tokens[lo:hi, :width])
                parts.append(mean_pool(hidden, pad))
            # [U, d]; a batch without a single molecule gets one zero row for its absent slots to point at
            vectors = torch.cat(parts) if parts else self.norm.weight.new_zeros(1, self.cfg.d_model)
            x = vectors[mols.index]  # [B, K, d]
            x = self._combine(x, self._slot_features(features, x.shape[1], x.dtype)) if self.feature_dim else x
        else:  # encoder "none": a molecule is its projected features (zero where no molecule is)
            x = self._slot_features(features, mols.index.shape[1], self.norm.weight.dtype)
            x = x * mols.present.unsqueeze(-1).to(x.dtype)
        x = x + self.roles(mols.roles).to(x.dtype)
        present = mols.present
        if self.cfg.pooling == "cls":
            x = torch.cat([self.reaction_cls.to(x.dtype).expand(x.shape[0], 1, -1), x], dim=1)
            present = torch.cat([present.new_ones(x.shape[0], 1), present], dim=1)
        else:  # a reaction without molecules attends to (and pools) its empty first slot, not to nothing
            present = present.clone()
            present[:, 0] |= ~present.any(dim=1)
        keep = present[:, None, None, :]
        for layer in self.reaction_layers:
            x = layer(x, keep)
        x = self.reaction_norm(x)
        return self.head(self.pool(x, ~present)).squeeze(-1).float()

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
