"""Loading both file layouts and every kind of bad input, with real RDKit checks."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from yieldtune.data import DataSpec, load_reactions, read_reactions
from yieldtune.errors import DataError

COMPONENTS_HEADER = "rxnid,Reactant1,Reactant2,Product,Additive,Solvent,Yield"
ROW_A = "r1,Brc1ccccc1,C1COCCN1,c1ccc(N2CCOCC2)cc1,CC(C)(C)[O-].[Na+],Cc1ccccc1,0.5"
ROW_B = "r2,Clc1ccccc1,C1CCNCC1,c1ccc(N2CCCCC2)cc1,,C1COCCO1,0.25"  # no additive: left out
RXN_HEADER = "rxn,yield"
RXN_A = "Brc1ccccc1.C1COCCN1.CC(C)(C)[O-].[Na+]>>c1ccc(N2CCOCC2)cc1,0.704105"
RXN_B = "Clc1ccccc1.C1CCNCC1>Cc1ccccc1>c1ccc(N2CCCCC2)cc1,0.1"


def write(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_components_layout_builds_reaction_smiles(tmp_path):
    path = write(tmp_path, "\n".join([COMPONENTS_HEADER, ROW_A, ROW_B]) + "\n")
    table = load_reactions(path, DataSpec())
    assert table.reactions == [
        "Brc1ccccc1.C1COCCN1>CC(C)(C)[O-].[Na+].Cc1ccccc1>c1ccc(N2CCOCC2)cc1",
        "Clc1ccccc1.C1CCNCC1>C1COCCO1>c1ccc(N2CCCCC2)cc1",
    ]
    assert table.yields.dtype == np.float32
    np.testing.assert_allclose(table.yields, [0.5, 0.25])
    assert table.ids == ["r1", "r2"]
    assert table.rows == [2, 3]
    assert table.source == str(path)


def test_component_columns_and_order_are_configurable(tmp_path):
    path = write(tmp_path, "Amine,Halide,Product,Solvent,Yield\nC1COCCN1,Brc1ccccc1,c1ccc(N2CCOCC2)cc1,CCO,0.3\n")
    spec = DataSpec(reactant_columns=("Halide", "Amine"), agent_columns=("Solvent",), id_column=None)
    table = load_reactions(path, spec)
    assert table.reactions == ["Brc1ccccc1.C1COCCN1>CCO>c1ccc(N2CCOCC2)cc1"]
    assert table.ids == ["0"]


def test_rxn_layout_and_unlabelled_file(tmp_path):
    path = write(tmp_path, "\n".join([RXN_HEADER, RXN_A, RXN_B]) + "\n")
    table = load_reactions(path, DataSpec.rxn())
    assert table.reactions[0] == RXN_A.rsplit(",", 1)[0]
    np.testing.assert_allclose(table.yields, [0.704105, 0.1], rtol=1e-6)

    unlabelled = write(tmp_path, "rxn\n" + RXN_A.rsplit(",", 1)[0] + "\n", "test.csv")
    t2 = load_reactions(unlabelled, DataSpec.rxn(target=None))
    assert t2.yields is None and not t2.has_targets and len(t2) == 1


@pytest.mark.parametrize("delimiter", ["\t", ";"])
def test_delimiter_is_sniffed(tmp_path, delimiter):
    lines = [COMPONENTS_HEADER, ROW_A, ROW_B]
    path = write(tmp_path, "\n".join(line.replace(",", delimiter) for line in lines) + "\n", "data.tsv")
    table = load_reactions(path)
    assert len(table) == 2 and table.reactions[1].startswith("Clc1ccccc1.C1CCNCC1>")


def test_quoted_fields_and_blank_lines_keep_file_row_numbers(tmp_path):
    text = f'{COMPONENTS_HEADER}\n\n"r1","Brc1ccccc1","C1COCCN1","c1ccc(N2CCOCC2)cc1","","CCO","0.5"\n\n{ROW_B}\n'
    table = load_reactions(write(tmp_path, text))
    assert table.rows == [3, 5]


def test_percent_targets_only_when_declared(tmp_path):
    path = write(tmp_path, f"{RXN_HEADER}\n{RXN_A.rsplit(',', 1)[0]},70.4\n")
    with pytest.raises(DataError, match=r"row 2.*'yield'.*outside \[0, 1\].*percent"):
        load_reactions(path, DataSpec.rxn())
    table = load_reactions(path, DataSpec.rxn().model_copy(update={"percent": True}))
    np.testing.assert_allclose(table.yields, [0.704], rtol=1e-6)


@pytest.mark.parametrize("cell, message", [
    ("", "blank target"),
    ("nan", "target is NaN"),
    ("NaN", "target is NaN"),
    ("high", "'high' is not a number"),
    ("1.5", r"outside \[0, 1\]"),
    ("-0.1", r"outside \[0, 1\]"),
])
def test_bad_targets_name_file_row_and_column(tmp_path, cell, message):
    path = write(tmp_path, "\n".join([COMPONENTS_HEADER, ROW_A, ROW_B.rsplit(",", 1)[0] + "," + cell]) + "\n")
    with pytest.raises(DataError, match=message) as info:
        load_reactions(path)
    err = info.value
    assert (err.path, err.row, err.column) == (str(path), 3, "Yield")
    assert str(path) in str(err) and "row 3" in str(err) and "'Yield'" in str(err)


def test_invalid_smiles_names_row_and_column(tmp_path):
    bad = ROW_B.replace("C1CCNCC1", "C1CCNCC")  # unclosed ring
    path = write(tmp_path, "\n".join([COMPONENTS_HEADER, ROW_A, bad]) + "\n")
    with pytest.raises(DataError, match=r"row 3, column 'Reactant2'.*invalid SMILES 'C1CCNCC'") as info:
        load_reactions(path)
    assert info.value.row == 3 and info.value.column == "Reactant2"


def test_invalid_smiles_in_rxn_layout_names_the_molecule(tmp_path):
    path = write(tmp_path, f"{RXN_HEADER}\n{RXN_B}\nClc1ccccc1.N(C)(C)(C)(C)C>>c1ccccc1,0.2\n")
    with pytest.raises(DataError, match=r"row 3, column 'rxn'.*invalid SMILES 'N\(C\)\(C\)\(C\)\(C\)C'"):
        load_reactions(path, DataSpec.rxn())


NO_PRODUCT = ROW_A.replace("c1ccc(N2CCOCC2)cc1", "")


@pytest.mark.parametrize("text, rxn_layout, message", [
    pytest.param(f"{RXN_HEADER}\nClc1ccccc1.C1CCNCC1,0.2\n", True, "row 2.*not a reaction SMILES",
                 id="not-a-reaction"),
    pytest.param(f"{COMPONENTS_HEADER}\n{NO_PRODUCT}\n", False, "row 2.*no products", id="missing-product"),
    # RDKit would silently read "CC O" as ethane plus a name; we must not.
    pytest.param(f"{COMPONENTS_HEADER}\n{ROW_A.replace('Cc1ccccc1', 'CC O')}\n", False,
                 "column 'Solvent'.*invalid SMILES 'CC O'", id="whitespace-inside-smiles"),
    pytest.param("rxnid,Reactant1,Product,Additive,Solvent,Yield\nr1,CC,CC,,,0.1\n", False,
                 r"row 1, column 'Reactant2'.*missing column 'Reactant2'", id="missing-column"),
    pytest.param("rxn\nCC>>CC\n", True, "missing column 'yield'.*unlabelled", id="missing-target-hints-unlabelled"),
    pytest.param("", False, "empty file", id="empty-file"),
    pytest.param("   \n\n", False, "empty file", id="blank-file"),
    pytest.param(COMPONENTS_HEADER + "\n", False, "no data rows", id="header-only"),
    pytest.param("\n".join(line.replace(",", "|") for line in [COMPONENTS_HEADER, ROW_A]) + "\n", False,
                 r"row 1: header parses into a single column.*wrong delimiter\?", id="wrong-delimiter"),
    pytest.param(f"{COMPONENTS_HEADER}\n{ROW_A},extra\n", False, "row 2: has 8 fields, the header has 7",
                 id="ragged-row"),
])
def test_bad_file_raises_naming_row_and_column(tmp_path, text, rxn_layout, message):
    with pytest.raises(DataError, match=message):
        load_reactions(write(tmp_path, text), DataSpec.rxn() if rxn_layout else DataSpec())


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        load_reactions(tmp_path / "nope.csv")


def test_drop_invalid_writes_report(tmp_path):
    rows = [
        COMPONENTS_HEADER,
        ROW_A,                                                  # row 2 ok
        ROW_B.replace("C1CCNCC1", "C1CCNCC"),                   # row 3 bad SMILES
        ROW_B.rsplit(",", 1)[0] + ",",                          # row 4 blank target
        ROW_B.rsplit(",", 1)[0] + ",77",                        # row 5 out of range
        ROW_B,                                                  # row 6 ok
    ]
    path = write(tmp_path, "\n".join(rows) + "\n")
    report = tmp_path / "out" / "report.csv"
    table = load_reactions(path, drop_invalid=True, report_path=report)
    assert table.rows == [2, 6] and len(table) == 2
    with report.open() as fh:
        got = list(csv.DictReader(fh))
    assert [(r["row"], r["column"]) for r in got] == [("3", "Reactant2"), ("4", "Yield"), ("5", "Yield")]
    assert got[0]["value"] == "C1CCNCC" and "invalid SMILES" in got[0]["reason"]
    assert got[1]["reason"] == "blank target"
    assert not [p for p in report.parent.iterdir() if p.name != "report.csv"]  # no temp files left
    result = read_reactions(path, drop_invalid=True)
    assert result.n_rows == 5 and result.dropped_rows == [3, 4, 5]


def test_drop_invalid_with_every_row_bad_is_an_error(tmp_path):
    path = write(tmp_path, f"{COMPONENTS_HEADER}\n{ROW_A.replace('0.5', 'x')}\n")
    with pytest.raises(DataError, match="no valid rows"):
        load_reactions(path, drop_invalid=True)


def test_validate_false_skips_rdkit_but_not_targets(tmp_path):
    path = write(tmp_path, f"{COMPONENTS_HEADER}\n{ROW_A.replace('C1COCCN1', 'C1COCCN')}\n")
    assert len(load_reactions(path, validate=False)) == 1
    with pytest.raises(DataError):
        load_reactions(path)


@pytest.mark.shared_data
def test_real_buchwald_hartwig_file(shared_data):
    table = load_reactions(shared_data / "buchwald_hartwig" / "FullCV_01.csv", DataSpec.rxn())
    assert len(table) == 3955 and table.yields.min() >= 0 and table.yields.max() <= 1
    assert all(r.count(">") >= 2 for r in table.reactions[:50])


@pytest.mark.shared_data
def test_real_suzuki_miyaura_file(shared_data):
    table = load_reactions(shared_data / "suzuki_miyaura" / "random_split_3.csv", DataSpec.rxn())
    assert len(table) == 5760 and table.has_targets


@pytest.mark.slow
@pytest.mark.shared_data
def test_real_aichem2024_train_and_test(shared_data):
    train = load_reactions(shared_data / "aichem2024" / "round1_train_data.csv")
    assert len(train) == 23538 and train.ids[0] == "train1"
    assert 0.6 < float(train.yields.mean()) < 0.66
    test = load_reactions(shared_data / "aichem2024" / "round1_test_data.csv", DataSpec(target=None))
    assert len(test) == 2616 and test.yields is None and test.ids[0] == "test1"
