"""A small plate of real molecules whose yield depends on halide, amine and base (training tests)."""

from __future__ import annotations

import itertools

import numpy as np

from yieldtune.data.table import ReactionTable

# A 5 x 4 x 3 plate of real molecules with a yield that depends on halide, amine and base.
HALIDES = [("Ic1ccccc1", 0.35), ("Brc1ccccc1", 0.15), ("Clc1ccccc1", -0.25), ("Ic1ccc(C)cc1", 0.3),
           ("Clc1ccncc1", -0.1)]
AMINES = [("C1COCCN1", 0.1), ("C1CCNCC1", 0.0), ("Nc1ccccc1", -0.1), ("NCc1ccccc1", -0.2)]
BASES = [("CC(C)(C)[O-].[Na+]", 0.15), ("O=C([O-])[O-].[Cs+].[Cs+]", 0.0), ("CCN(CC)CC", -0.2)]


def plate() -> ReactionTable:
    rxns, ys = [], []
    for (h, eh), (a, ea), (b, eb) in itertools.product(HALIDES, AMINES, BASES):
        rxns.append(f"{h}.{a}>{b}.[Pd]>c1ccccc1")
        ys.append(np.clip(0.45 + eh + ea + eb, 0.0, 1.0))
    return ReactionTable(rxns, np.array(ys, dtype=np.float32))


def write_plate_csv(path):
    """The plate as a components CSV (rxnid, two reactants, product, additive, solvent, yield)."""
    table = plate()
    lines = ["rxnid,Reactant1,Reactant2,Product,Additive,Solvent,Yield"]
    for i, (rxn, y) in enumerate(zip(table.reactions, table.yields)):
        reactants, agents, product = rxn.split(">")
        r1, r2 = reactants.split(".")
        lines.append(f"r{i},{r1},{r2},{product},{agents},CCOC(C)=O,{y:.4f}")
    path.write_text("\n".join(lines) + "\n")
    return path


def write_rxn_plate_csv(path):
    """A 3 x 3 x 2 plate (halide, amine, base) as an rxn,yield CSV whose yield is additive in the three."""
    rows = [f"{h}.{a}>{b}>c1ccccc1,{0.1 + 0.2 * i + 0.1 * j + 0.05 * k:.3f}"
            for (i, h), (j, a), (k, b) in itertools.product(
                enumerate(["Ic1ccccc1", "Brc1ccccc1", "Clc1ccccc1"]), enumerate(["C1COCCN1", "Nc1ccccc1", "CCN"]),
                enumerate(["CCN(CC)CC", "[Na+].CC(C)(C)[O-]"]))]
    path.write_text("rxn,yield\n" + "\n".join(rows) + "\n")
    return path
