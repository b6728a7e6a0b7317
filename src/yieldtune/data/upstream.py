"""Converting the rxn_yields upstream files into the ``rxn,yield`` CSVs the project reads.

The Buchwald–Hartwig and Suzuki–Miyaura sets are published by the rxn_yields project (rxn4chemistry, MIT
licence): BH as an Excel workbook of components (one sheet per split, yields in percent), SM as TSVs of
reaction SMILES with an index column. The conversion follows the published recipe (rxn_yields'
``generate_buchwald_hartwig_rxns``): RDKit-canonical components, the Pd precatalyst and p-toluidine added, and
the product made from the aryl halide by one reaction SMARTS. The result is byte-identical to the registry's
reference CSVs, whose SHA-256 the fetch checks after converting.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from yieldtune.data.validate import SmilesCache
from yieldtune.errors import DataError

BH_COLUMNS = ("Ligand", "Additive", "Base", "Aryl halide", "Output")
TOLUIDINE = "Cc1ccc(N)cc1"
PRECATALYST = "O=S(=O)(O[Pd]1~[NH2]C2C=CC=CC=2C2C=CC=CC1=2)C(F)(F)F"
# Aryl halide + aniline -> diarylamine (the forward template of rxn_yields).
CN_COUPLING_SMARTS = ("[F,Cl,Br,I]-[c;H0;D3;+0:1](:[c,n:2]):[c,n:3].[NH2;D1;+0:4]-[c:5]>>"
                      "[c,n:2]:[c;H0;D3;+0:1](:[c,n:3])-[NH;D2;+0:4]-[c:5]")


def _csv_text(rows: list[tuple[str, float]]) -> str:
    """``rxn,yield`` with yields as fractions rounded to 6 decimals, as in the reference files."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["rxn", "yield"])
    for rxn, y in rows:
        writer.writerow([rxn, repr(round(y, 6))])
    return buf.getvalue()


def _fraction(value, where: dict, *, percent: bool) -> float:
    try:
        y = float(value)
    except (TypeError, ValueError):
        raise DataError(f"yield {value!r} is not a number", **where) from None
    upper = 100.0 if percent else 1.0
    if not math.isfinite(y) or not (0.0 <= y <= upper):
        raise DataError(f"yield {value!r} is outside [0, {upper:g}]", **where)
    return y / 100.0 if percent else y


class _BuchwaldHartwig:
    """Reaction SMILES from BH components, with canonical forms and products computed once per molecule."""

    def __init__(self) -> None:
        from rdkit import Chem
        from rdkit.Chem import rdChemReactions

        self._smiles = SmilesCache()
        self._products: dict[str, str] = {}
        self._coupling = rdChemReactions.ReactionFromSmarts(CN_COUPLING_SMARTS)
        self._toluidine = Chem.MolFromSmiles(TOLUIDINE)
        self.precatalyst = self._smiles.canonical(PRECATALYST)

    def canonical(self, smiles, where: dict) -> str:
        out = self._smiles.canonical(smiles.strip()) if isinstance(smiles, str) else None
        if out is None:
            raise DataError(f"invalid SMILES {smiles!r}", **where)
        return out

    def product(self, aryl_halide: str, where: dict) -> str:
        """The one product of coupling ``aryl_halide`` with p-toluidine."""
        if aryl_halide not in self._products:
            from rdkit import Chem

            mol = Chem.MolFromSmiles(aryl_halide)
            found = {Chem.MolToSmiles(p[0]) for p in self._coupling.RunReactants((mol, self._toluidine))}
            if len(found) != 1:
                raise DataError(f"aryl halide {aryl_halide!r} gives {len(found)} coupling products, expected 1",
                                **where)
            self._products[aryl_halide] = found.pop()
        return self._products[aryl_halide]

    def reaction(self, cells: dict, where: dict) -> str:
        def canon(column: str) -> str:
            return self.canonical(cells[column], {**where, "column": column})

        halide = canon("Aryl halide")
        product = self.product(halide, {**where, "column": "Aryl halide"})
        return (f"{halide}.{TOLUIDINE}.{self.precatalyst}.{canon('Ligand')}.{canon('Base')}."
                f"{canon('Additive')}>>{product}")


def convert_buchwald_hartwig(xlsx: str | Path, sheets: list[str]) -> dict[str, str]:
    """``rxn,yield`` CSV text for each named sheet of the Dreher & Doyle workbook."""
    from openpyxl import load_workbook

    xlsx = Path(xlsx)
    try:
        book = load_workbook(xlsx, read_only=True, data_only=True)
    except Exception as err:  # a corrupt or non-xlsx file: openpyxl raises many types
        raise DataError(f"cannot read as an Excel workbook ({type(err).__name__}: {err})", path=str(xlsx)) from None
    builder = _BuchwaldHartwig()
    out: dict[str, str] = {}
    try:
        for sheet in sheets:
            if sheet not in book.sheetnames:
                raise DataError(f"no sheet {sheet!r}; sheets: {', '.join(book.sheetnames)}", path=str(xlsx))
            rows = book[sheet].iter_rows(values_only=True)
            header = [str(c).strip() if c is not None else "" for c in next(rows, ())]
            missing = [c for c in BH_COLUMNS if c not in header]
            if missing:
                raise DataError(f"sheet {sheet!r} lacks column(s) {', '.join(missing)}", path=str(xlsx), row=1)
            index = {c: header.index(c) for c in BH_COLUMNS}
            converted = []
            for number, values in enumerate(rows, start=2):
                if all(v is None for v in values):
                    continue
                where = {"path": f"{xlsx} sheet {sheet}", "row": number}
                cells = {c: values[i] if i < len(values) else None for c, i in index.items()}
                y = _fraction(cells["Output"], {**where, "column": "Output"}, percent=True)
                converted.append((builder.reaction(cells, where), y))
            out[sheet] = _csv_text(converted)
    finally:
        book.close()
    return out


def convert_suzuki_miyaura(tsv: str | Path) -> str:
    """``rxn,yield`` CSV text from one rxn_yields random-split TSV (index column, ``rxn``, ``y``)."""
    tsv = Path(tsv)
    with open(tsv, encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh, delimiter="\t"))
    if not rows or rows[0][1:3] != ["rxn", "y"]:
        raise DataError("expected a header with columns rxn and y after the index column", path=str(tsv), row=1)
    converted = []
    for number, cells in enumerate(rows[1:], start=2):
        if len(cells) != 3:
            raise DataError(f"has {len(cells)} fields, expected 3", path=str(tsv), row=number)
        converted.append((cells[1], _fraction(cells[2], {"path": str(tsv), "row": number, "column": "y"},
                                              percent=False)))
    return _csv_text(converted)
