"""Hostile training files through `tune train`: one error line naming the file and the row or column, exit 2,
no traceback, nothing written. Valid but unusual files (BOM, CRLF, CR, ';' or tab, UTF-16, extra or reordered
columns) load to the same reactions and train."""

from __future__ import annotations

import json
import os
import re

import pytest
from click.testing import CliRunner

from yieldtune.cli.main import main
from yieldtune.data import load_reactions

HEADER = ["rxnid", "Reactant1", "Reactant2", "Product", "Additive", "Solvent", "Yield"]
HALIDES = ["Brc1ccccc1", "Clc1ccccc1", "Ic1ccccc1", "Brc1ccncc1", "Clc1ccncc1"]
AMINES = ["C1COCCN1", "C1CCNCC1"]
ROWS = [[f"r{i}", h, a, "c1ccccc1N1CCOCC1" if a == "C1COCCN1" else "c1ccccc1N1CCCCC1", "CC(C)(C)[O-].[Na+]",
         "Cc1ccccc1", f"{0.05 + 0.09 * i:.2f}"] for i, (h, a) in enumerate((h, a) for h in HALIDES for a in AMINES)]
TINY = ["model.d_model=16", "model.n_layers=1", "model.n_heads=2", "model.ffn_dim=32", "model.reaction_layers=1",
        "train.epochs=1", "train.batch_size=4", "train.num_threads=1", "train.precision=fp32"]


def csv_text(rows, header=HEADER, sep=",", eol="\n") -> str:
    return eol.join(sep.join(r) for r in [header, *rows]) + eol


def with_cell(row: int, column: str, value: str, rows=ROWS) -> list[list[str]]:
    """A copy of ``rows`` with one cell replaced (row counts data rows from 0)."""
    out = [list(r) for r in rows]
    out[row][HEADER.index(column)] = value
    return out


def train(path, out):
    sets = [a for s in TINY for a in ("--set", s)]
    return CliRunner().invoke(main, ["train", "--data", str(path), "--out", str(out), "--val-frac", "0.2",
                                     "--device", "cpu", "--json", *sets])


XLSX_MAGIC = b"PK\x03\x04\x14\x00\x06\x00" + b"\x00" * 64

HOSTILE = [
    pytest.param(csv_text(with_cell(1, "Reactant1", "C" * 200_000)),
                 r"row 3, column 'Reactant1': a cell of 200,000 characters", id="cell-over-csv-field-limit"),
    pytest.param(csv_text([[*r, "0.9"] for r in ROWS], header=[*HEADER, "Yield"]),
                 r"row 1, column 'Yield': column name 'Yield' appears twice \(columns 7 and 8\)",
                 id="duplicate-column"),
    pytest.param(csv_text([[*r[:-1], "0.5"] for r in ROWS]), r"column 'Yield': the target is constant: all 10 rows",
                 id="constant-target"),
    pytest.param(csv_text(ROWS).encode().replace(b"Ic1ccccc1", b"Ic1cc\xe9ccc1", 1),
                 r"row 6: not UTF-8 text \(invalid continuation byte", id="undecodable-byte"),
    pytest.param(csv_text(ROWS).replace("Ic1ccccc1", "Ic1cc\0ccc1", 1), r"row 6: contains a NUL byte",
                 id="nul-byte"),
    pytest.param(csv_text(ROWS).encode("utf-16-le"), r"row 1: contains a NUL byte.*UTF-16 without a BOM",
                 id="utf16-without-bom"),
    pytest.param(csv_text(ROWS[:3]) + csv_text(ROWS[3:]), r"row 5: repeats the header", id="header-mid-file"),
    pytest.param(csv_text(with_cell(2, "Reactant1", '"Clc1ccc\ncc1"')) + "r99,CC,CC,CC,,,0.1\n",
                 r"row 4, column 'Reactant1'.*invalid SMILES", id="quoted-newline-in-smiles"),
    pytest.param(csv_text(ROWS) + '"r99,CC,CC,CC,,,0.1\nr100,CC\n',
                 r"row 12: has 1 fields, the header has 7 \(an unclosed quote", id="unclosed-quote"),
    pytest.param(csv_text(with_cell(3, "Yield", "1e400")), r"row 5, column 'Yield': target 1e400 overflows",
                 id="1e400"),
    pytest.param(csv_text(with_cell(3, "Yield", "inf")), r"row 5, column 'Yield': target inf is infinite",
                 id="inf"),
    pytest.param(csv_text(with_cell(3, "Yield", "-Infinity")), r"row 5, column 'Yield': target -Infinity is inf",
                 id="-infinity"),
    pytest.param(csv_text(with_cell(3, "Yield", "nan")), r"row 5, column 'Yield': target is NaN", id="nan"),
    pytest.param(csv_text(with_cell(3, "Yield", "0_5")), r"row 5, column 'Yield': target '0_5' is not a number",
                 id="underscore-number"),
    pytest.param(csv_text(with_cell(3, "Yield", "\u0660.\u0665")), r"row 5, column 'Yield'.*is not a number",
                 id="non-ascii-digits"),
    pytest.param(csv_text(with_cell(3, "Yield", "0,5"), sep=";"), r"row 5, column 'Yield'.*decimal comma",
                 id="decimal-comma"),
    pytest.param(csv_text(with_cell(3, "Yield", "")), r"row 5, column 'Yield': blank target", id="blank-target"),
    pytest.param("", r"empty file", id="empty"),
    pytest.param("\n \n\t\n", r"empty file", id="whitespace-only"),
    pytest.param(csv_text([]), r"a header but no data rows", id="header-only"),
    pytest.param(XLSX_MAGIC, r"is a spreadsheet, not CSV/TSV text", id="xlsx-renamed-csv"),
    pytest.param(csv_text([r[:-1] for r in ROWS], header=[*HEADER[:-1], "yield"])
                 .replace("rxnid,", "rxnid,Yield,", 1).replace("\nr", "\n0.5,r"),
                 r"row 1, column 'yield': columns 'Yield', 'yield' differ only in case", id="yield-and-Yield"),
]


@pytest.mark.parametrize("content, message", HOSTILE)
def test_hostile_file_is_one_line_error_and_nothing_is_written(tmp_path, content, message):
    path = tmp_path / "data.csv"
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    out = tmp_path / "run"
    result = train(path, out)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    assert lines[0].startswith(f"error: {path}"), lines[0]
    assert re.search(message, lines[0]), lines[0]
    assert not out.exists()


def test_enormous_file_is_refused_before_reading(tmp_path):
    path = tmp_path / "huge.csv"
    with open(path, "wb") as fh:  # sparse: 3 GiB on paper, nothing on disk
        fh.write(csv_text(ROWS).encode())
        fh.truncate(3 << 30)
    result = train(path, tmp_path / "run")
    assert result.exit_code == 2 and re.search(rf"error: {re.escape(str(path))}: file is 3\.0 GiB", result.stderr)


def test_a_pipe_is_refused_not_read_forever(tmp_path):
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    result = train(fifo, tmp_path / "run")
    assert result.exit_code == 2 and "not a regular file" in result.stderr


def unusual(name: str) -> bytes:
    reordered = [HEADER[i] for i in (6, 3, 0, 5, 1, 4, 2)] + ["note"]
    moved = [[r[HEADER.index(c)] for c in reordered[:-1]] + ["a, quoted; note"] for r in ROWS]
    variants = {
        "bom": lambda: b"\xef\xbb\xbf" + csv_text(ROWS).encode(),
        "crlf": lambda: csv_text(ROWS, eol="\r\n").encode(),
        "cr-only": lambda: csv_text(ROWS, eol="\r").encode(),
        "semicolon": lambda: csv_text(ROWS, sep=";").encode(),
        "tab": lambda: csv_text(ROWS, sep="\t").encode(),
        "utf16-bom": lambda: csv_text(ROWS).encode("utf-16"),
        "extra-and-reordered-columns": lambda: csv_text(
            [[*r[:-1], f'"{r[-1]}"'] for r in moved], header=reordered).encode(),
        "all-at-once": lambda: b"\xef\xbb\xbf" + csv_text(
            [[*r[:-1], f'"{r[-1]}"'] for r in moved], header=reordered, sep=";", eol="\r\n").encode(),
    }
    return variants[name]()


@pytest.mark.parametrize("name", ["bom", "crlf", "cr-only", "semicolon", "tab", "utf16-bom",
                                  "extra-and-reordered-columns", "all-at-once"])
def test_valid_but_unusual_files_read_the_same_reactions(tmp_path, name):
    plain = tmp_path / "plain.csv"
    plain.write_text(csv_text(ROWS))
    odd = tmp_path / "odd.csv"
    odd.write_bytes(unusual(name))
    want, got = load_reactions(plain), load_reactions(odd)
    assert got.reactions == want.reactions and got.ids == want.ids
    assert got.yields.tolist() == want.yields.tolist()


def test_unusual_file_trains(tmp_path):
    odd = tmp_path / "odd.csv"
    odd.write_bytes(unusual("all-at-once"))
    result = train(odd, tmp_path / "run")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["n_train"] == 8
    assert (tmp_path / "run" / "metrics.json").is_file()
