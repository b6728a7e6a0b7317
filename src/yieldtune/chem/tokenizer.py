"""Regex SMILES tokenizer and vocabulary (Schwaller et al., Molecular Transformer).

Reaction SMILES are split into chemically meaningful tokens: bracket atoms, two-letter halogens,
ring closures (``%nn`` too), bonds, ``.`` and the ``>`` role separators. A final single-character
alternative makes the pattern total, so ``"".join(tokenize(s)) == s`` for every string and no
character is ever silently dropped; characters never seen in training map to ``[UNK]``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from yieldtune.errors import ModelFileError
from yieldtune.files import write_atomic

# ``->``/``<-`` (RDKit's dative bonds, as in metal complexes) are one token each, so a dative bond's ``>`` is
# never read as a role separator (data.validate.molecule_stretches cuts the same way).
SMILES_REGEX = re.compile(
    r"(\[[^\]]+]|Br?|Cl?|N|O|S|P|F|I|b|c|n|o|s|p|\(|\)|\.|=|#|->|<-|-|\+|\\|/|:|~|@|\?|>|\*|\$|%\d{2}|\d|.)",
    re.DOTALL,
)

PAD, UNK, CLS, SEP = "[PAD]", "[UNK]", "[CLS]", "[SEP]"
SPECIAL_TOKENS = (PAD, UNK, CLS, SEP)
VOCAB_FORMAT = "yieldtune-smiles-vocab"

# Tokens that randomized SMILES of the training molecules can produce even when the canonical forms
# never do (other ring-closure digits, bond symbols); known up front so augmentation/TTA rarely hit UNK.
_COMMON_TOKENS = tuple("123456789") + ("%10", "%11", "%12") + tuple("()=#-+.:/\\~>") + (
    "C", "N", "O", "S", "P", "F", "Cl", "Br", "I", "B", "c", "n", "o", "s", "p")


def tokenize(smiles: str) -> list[str]:
    """Split a (reaction) SMILES string into tokens; joining them gives the input back exactly."""
    return SMILES_REGEX.findall(smiles)


class SmilesTokenizer:
    """A fixed token vocabulary with ``[PAD]=0, [UNK]=1, [CLS]=2, [SEP]=3``, built from training data."""

    pad_id, unk_id, cls_id, sep_id = 0, 1, 2, 3

    def __init__(self, tokens: Iterable[str]) -> None:
        tokens = list(tokens)
        if tuple(tokens[:4]) != SPECIAL_TOKENS:
            raise ValueError(f"vocabulary must start with {SPECIAL_TOKENS}")
        if len(set(tokens)) != len(tokens):
            raise ValueError("vocabulary has duplicate tokens")
        self.tokens = tokens
        self.index = {t: i for i, t in enumerate(tokens)}

    tokenize = staticmethod(tokenize)

    @classmethod
    def build(cls, reactions: Iterable[str], *, min_count: int = 1) -> "SmilesTokenizer":
        """Vocabulary of every token seen in ``reactions`` (plus common SMILES tokens), in a stable order."""
        counts: Counter[str] = Counter()
        for rxn in reactions:
            counts.update(tokenize(rxn))
        seen = {t for t, c in counts.items() if c >= min_count}
        seen.update(_COMMON_TOKENS)
        ordered = sorted(seen - set(SPECIAL_TOKENS), key=lambda t: (-counts.get(t, 0), t))
        return cls(list(SPECIAL_TOKENS) + ordered)

    @property
    def vocab_size(self) -> int:
        return len(self.tokens)

    def fingerprint(self) -> str:
        """Short hash of the vocabulary, used to key caches of encoded arrays."""
        return hashlib.sha256("\n".join(self.tokens).encode()).hexdigest()[:16]

    def encode(self, rxn: str, max_len: int) -> np.ndarray:
        """``[CLS]`` + token ids (``>`` role separators kept as tokens), truncated to ``max_len`` ids."""
        get, unk = self.index.get, self.unk_id
        ids = [self.cls_id]
        ids.extend(get(t, unk) for t in tokenize(rxn)[: max_len - 1])
        return np.asarray(ids, dtype=np.int32)

    def encode_many(self, reactions: Iterable[str], max_len: int) -> list[np.ndarray]:
        return [self.encode(r, max_len) for r in reactions]

    def decode(self, ids: Iterable[int]) -> str:
        """Inverse of :meth:`encode` for known tokens (special tokens dropped)."""
        return "".join(self.tokens[i] for i in ids if i > self.sep_id)

    def to_dict(self) -> dict:
        return {"format": VOCAB_FORMAT, "version": 1, "tokens": self.tokens}

    def save(self, path: str | Path) -> None:
        """Write the vocabulary as JSON (atomically)."""
        write_atomic(path, json.dumps(self.to_dict(), indent=0))

    @classmethod
    def load(cls, path: str | Path) -> "SmilesTokenizer":
        """Read a vocabulary written by :meth:`save`; anything else raises :class:`ModelFileError`."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise ModelFileError(f"{path}: vocabulary file not found") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ModelFileError(f"{path}: not a JSON vocabulary file ({err})") from None
        if (not isinstance(data, dict) or data.get("format") != VOCAB_FORMAT
                or not isinstance(data.get("tokens"), list) or not all(isinstance(t, str) for t in data["tokens"])):
            raise ModelFileError(f"{path}: not a yieldtune vocabulary (expected format {VOCAB_FORMAT!r})")
        try:
            return cls(data["tokens"])
        except ValueError as err:
            raise ModelFileError(f"{path}: {err}") from None
