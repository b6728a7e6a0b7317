"""Regex SMILES tokenizer: lossless round trips on real reactions, vocabulary ids, encoding, JSON files."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from yieldtune.chem.tokenizer import SmilesTokenizer, tokenize
from yieldtune.errors import ModelFileError

# Real reactions: Buchwald-Hartwig (FullCV_01, incl. the Pd precatalyst with its '~' bond), Suzuki-Miyaura and
# aichem2024-style components joined as reaction SMILES; plus syntax corner cases.
REACTIONS = [
    "Clc1ccccn1.Cc1ccc(N)cc1.O=S(=O)([O][Pd]1[c]2ccccc2-c2ccccc2[NH2]~1)C(F)(F)F.COc1ccc(OC)c(P([C@]23C[C@H]4C[C@H](C[C@H](C4)C2)C3)[C@]23C[C@H]4C[C@H](C[C@H](C4)C2)C3)c1-c1c(C(C)C)cc(C(C)C)cc1C(C)C.CCN=P(N=P(N(C)C)(N(C)C)N(C)C)(N(C)C)N(C)C.Cc1cc(C)on1>>Cc1ccc(Nc2ccccn2)cc1",
    "Brc1ccccn1.Cc1ccc(N)cc1.O=S(=O)([O][Pd]1[c]2ccccc2-c2ccccc2[NH2]~1)C(F)(F)F.CC(C)c1cc(C(C)C)c(-c2ccccc2P(C2CCCCC2)C2CCCCC2)c(C(C)C)c1.CN1CCCN2CCCN=C12.COC(=O)c1ccno1>>Cc1ccc(Nc2ccccn2)cc1",
    "Brc1ccc2ncccc2c1.CC#N.CC(=O)O~CC(=O)O~[Pd].CCN(CC)CC.Cc1ccc2c(cnn2C2CCCCO2)c1B(O)O.O>>Cc1ccc2c(cnn2C2CCCCO2)c1-c1ccc2ncccc2c1",
    "c1ccc2c(c1)Nc1ccccc1O2.Brc1ccccc1I>CC(C)(C)[O-].F[B-](F)(F)F.[H+].[Na+].[Pd+2].Cc1ccccc1>Brc1ccccc1N1c2ccccc2Oc2ccccc21",
    "C/C=C/Br.N[C@@H](C)C(=O)O>[Cu+]>C/C=C/N[C@@H](C)C(=O)O",
    "C1CC2CCCCCCCCC%10CCC2C1%10>>[2H]C([2H])([2H])Cl",
    "[13CH4].*C.C$C?>>C:C\\C=C/C",
]


@pytest.mark.parametrize("rxn", REACTIONS)
def test_round_trip_literals(rxn):
    assert "".join(tokenize(rxn)) == rxn


def test_token_boundaries():
    assert tokenize("[Pd]Br.Cl>>C%12c1") == ["[Pd]", "Br", ".", "Cl", ">", ">", "C", "%12", "c", "1"]
    assert tokenize("[C@@H](O)=N#[N+]~[O-]") == ["[C@@H]", "(", "O", ")", "=", "N", "#", "[N+]", "~", "[O-]"]
    # characters outside the SMILES alphabet are still tokens, never dropped
    assert tokenize("C Ü") == ["C", " ", "Ü"]


def test_round_trip_all_of_buchwald_hartwig(shared_data):
    with open(shared_data / "buchwald_hartwig" / "FullCV_01.csv", newline="") as fh:
        rxns = [row["rxn"] for row in csv.DictReader(fh)]
    assert len(rxns) == 3955
    bad = [r for r in rxns if "".join(tokenize(r)) != r]
    assert bad == []


def test_vocabulary_special_ids_and_encoding():
    tok = SmilesTokenizer.build(REACTIONS[:3])
    assert tok.tokens[:4] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
    assert (tok.pad_id, tok.unk_id, tok.cls_id, tok.sep_id) == (0, 1, 2, 3)
    ids = tok.encode(REACTIONS[0], max_len=512)
    assert ids.dtype == np.int32 and ids[0] == tok.cls_id
    assert len(ids) == 1 + len(tokenize(REACTIONS[0]))
    assert tok.decode(ids) == REACTIONS[0]
    assert (ids == tok.index[">"]).sum() == 2  # role separators kept as tokens
    assert tok.unk_id not in ids and tok.pad_id not in ids
    short = tok.encode(REACTIONS[0], max_len=16)
    assert len(short) == 16 and short[0] == tok.cls_id
    unknown = tok.encode("[Xe]C>>[Rn]", max_len=32)
    assert list(unknown[[1, 5]]) == [tok.unk_id, tok.unk_id]


def test_save_load_json(tmp_path):
    tok = SmilesTokenizer.build(REACTIONS)
    path = tmp_path / "vocab.json"
    tok.save(path)
    assert json.loads(path.read_text())["tokens"] == tok.tokens
    again = SmilesTokenizer.load(path)
    assert again.tokens == tok.tokens and again.vocab_size == tok.vocab_size
    assert np.array_equal(again.encode(REACTIONS[3], 128), tok.encode(REACTIONS[3], 128))


@pytest.mark.parametrize("content", ["not json", '{"tokens": ["a"]}',
                                     '{"format": "yieldtune-smiles-vocab", "tokens": ["C"]}'])
def test_bad_vocab_file_is_model_file_error(tmp_path, content):
    path = tmp_path / "vocab.json"
    path.write_text(content)
    with pytest.raises(ModelFileError, match="vocab.json"):
        SmilesTokenizer.load(path)
    with pytest.raises(ModelFileError, match="not found"):
        SmilesTokenizer.load(tmp_path / "missing.json")
