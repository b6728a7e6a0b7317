"""Pre-tokenized sequences and length-bucketed batches.

Reactions are tokenized once into one flat int32 array; a batch is only a slice-and-pad to the longest
sequence in it. Batches group sequences of similar length (sorted inside large random chunks, then the
batch order is shuffled), so little compute goes to padding while every epoch still sees a new order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from yieldtune.chem.tokenizer import SmilesTokenizer


class EncodedReactions:
    """Token-id sequences in one flat int32 buffer with offsets (cheap to slice, cheap to cache)."""

    def __init__(self, sequences: Sequence[np.ndarray]) -> None:
        self.lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
        self.offsets = np.zeros(len(sequences) + 1, dtype=np.int64)
        np.cumsum(self.lengths, out=self.offsets[1:])
        self.flat = np.concatenate(sequences).astype(np.int32, copy=False) if len(sequences) else \
            np.zeros(0, dtype=np.int32)

    def __len__(self) -> int:
        return len(self.lengths)

    def pad(self, index: np.ndarray, pad_id: int = 0) -> np.ndarray:
        """Rows ``index`` padded to their own maximum length, as an int64 ``[B, L]`` array."""
        lengths = self.lengths[index]
        out = np.full((len(index), int(lengths.max())), pad_id, dtype=np.int64)
        flat, offsets = self.flat, self.offsets
        for row, (i, n) in enumerate(zip(index.tolist(), lengths.tolist())):
            start = offsets[i]
            out[row, :n] = flat[start:start + n]
        return out


_ENCODED: dict[tuple[str, str, int], EncodedReactions] = {}


def encode_reactions(tokenizer: SmilesTokenizer, reactions: Sequence[str], max_len: int, *,
                     cache: bool = True) -> EncodedReactions:
    """Tokenize ``reactions`` once; identical requests in this process reuse the arrays."""
    if not cache:
        return EncodedReactions(tokenizer.encode_many(reactions, max_len))
    h = hashlib.sha256()
    for r in reactions:
        h.update(r.encode())
        h.update(b"\n")
    key = (h.hexdigest(), tokenizer.fingerprint(), max_len)
    hit = _ENCODED.get(key)
    if hit is None:
        if len(_ENCODED) > 64:  # a long-lived worker must not grow without bound
            _ENCODED.pop(next(iter(_ENCODED)))
        hit = _ENCODED[key] = EncodedReactions(tokenizer.encode_many(reactions, max_len))
    return hit


def bucketed_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator,
                     chunk_batches: int = 50) -> list[np.ndarray]:
    """Shuffled, length-bucketed batches of indices into ``lengths``.

    Indices are shuffled, cut into chunks of ``chunk_batches`` batches, sorted by length inside each chunk
    and cut into batches; then the batch order is shuffled.
    """
    order = rng.permutation(len(lengths))
    chunk = batch_size * chunk_batches
    batches = []
    for start in range(0, len(order), chunk):
        part = order[start:start + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches.extend(part[i:i + batch_size] for i in range(0, len(part), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def sorted_batches(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Deterministic length-sorted batches for prediction (callers scatter results back by index)."""
    order = np.argsort(lengths, kind="stable")
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def random_batches(n: int, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Plain shuffled batches, no bucketing (the seed-style baseline)."""
    order = rng.permutation(n)
    return [order[i:i + batch_size] for i in range(0, n, batch_size)]
