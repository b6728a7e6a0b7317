"""RDKit checks on reaction SMILES, cached per unique molecule.

Reaction data sets repeat the same few hundred molecules thousands of times (23.5k aichem rows hold a few
thousand distinct molecules), so every molecule string is parsed once and its canonical form remembered.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

from yieldtune.files import write_atomic

# '>' separates reaction roles, but '->' is an RDKit dative bond inside a molecule: split only on a bare '>'.
_ROLE_SPLIT = re.compile(r"(?<!-)>")
_MOLECULE_SPLIT = re.compile(r"\.|" + _ROLE_SPLIT.pattern)  # molecules end at '.' or where a role ends
_WHITESPACE = re.compile(r"\s")


@dataclass(frozen=True)
class Problem:
    """One bad cell: where it is (1-based file row, header = row 1), which column, why, and its value."""

    row: int
    column: str
    reason: str
    value: str


def role_strings(rxn: str) -> list[str]:
    """A reaction SMILES cut at each bare ``>`` (not at a dative bond's ``->``), however many parts it has."""
    return _ROLE_SPLIT.split(rxn)


def split_reaction(rxn: str) -> tuple[str, str, str] | None:
    """``reactants>agents>products`` -> the three role strings, or None when it is not a reaction SMILES."""
    parts = role_strings(rxn)
    if len(parts) != 3:
        return None
    return parts[0].strip(), parts[1].strip(), parts[2].strip()


def molecule_stretches(text: str) -> list[str]:
    """The stretches of a reaction SMILES (or one role of it) between ``.`` and bare ``>``, in order; empty
    stretches (an empty role, as in ``>>``) are kept. The model's tokens cut molecules at the same places."""
    return _MOLECULE_SPLIT.split(text)


class SmilesCache:
    """Validity and canonical SMILES per molecule string, each computed once.

    Loading only needs validity (a parse); canonical forms (parse + write) are computed on demand for
    duplicate detection, which keeps validating 23.5k aichem rows (36k distinct molecules) to a few seconds.
    """

    def __init__(self) -> None:
        self._valid: dict[str, bool] = {}
        self._canonical: dict[str, str | None] = {}

    def __len__(self) -> int:
        return len(self._valid.keys() | self._canonical.keys())

    def is_valid(self, smiles: str) -> bool:
        """Whether RDKit parses (and sanitizes) one molecule string."""
        try:
            return self._valid[smiles]
        except KeyError:
            pass
        if smiles in self._canonical:
            return self._canonical[smiles] is not None
        ok = _parse(smiles) is not None
        self._valid[smiles] = ok
        return ok

    def canonical(self, smiles: str) -> str | None:
        """Canonical SMILES of one molecule string, or None where it is not valid SMILES."""
        try:
            return self._canonical[smiles]
        except KeyError:
            pass
        result: str | None = None
        if self._valid.get(smiles, True):
            mol = _parse(smiles)
            if mol is not None:
                from rdkit import Chem

                result = Chem.MolToSmiles(mol)
        self._canonical[smiles] = result
        return result

    def check_part(self, part: str, *, canonical: bool = False) -> tuple[list[str], str | None]:
        """Molecules of a '.'-joined string (canonical ones when asked), plus the first bad molecule or None.

        Molecules are checked one by one so that the cache hits; a string whose pieces fail only because a
        ring bond crosses a '.' (legal but rare) is then parsed whole before it is called invalid.
        """
        pieces = [p.strip() for p in part.split(".")] if part else []
        out: list[str] = []
        for piece in pieces:
            if not piece:
                return out, part  # "A..B" or a trailing '.': not SMILES
            if canonical:
                c = self.canonical(piece)
            else:
                c = piece if self.is_valid(piece) else None
            if c is None:
                whole = self.canonical(part)
                if whole is None:
                    return out, piece
                return (sorted(whole.split(".")) if canonical else pieces), None
            out.append(c)
        return out, None


def _parse(smiles: str):
    """RDKit molecule or None, with RDKit's own error logging silenced (we report errors ourselves)."""
    if not smiles or _WHITESPACE.search(smiles):  # RDKit reads "CC O" as "CC" plus a name: reject it
        return None
    from rdkit import Chem, rdBase

    with rdBase.BlockLogs():
        return Chem.MolFromSmiles(smiles)


def canonical_reaction(rxn: str, cache: SmilesCache | None = None) -> str | None:
    """Reaction SMILES with each role's molecules canonicalized and sorted (order-insensitive), or None."""
    cache = SmilesCache() if cache is None else cache
    roles = split_reaction(rxn)
    if roles is None:
        return None
    out = []
    for role in roles:
        canon, bad = cache.check_part(role, canonical=True)
        if bad is not None:
            return None
        out.append(".".join(sorted(m for c in canon for m in c.split("."))))
    return ">".join(out)


def write_problem_report(path: str | Path, problems: list[Problem]) -> Path:
    """CSV ``row,column,reason,value`` listing every dropped cell, written atomically."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["row", "column", "reason", "value"])
    for p in problems:
        writer.writerow([p.row, p.column, p.reason, p.value])
    return write_atomic(path, buf.getvalue())
