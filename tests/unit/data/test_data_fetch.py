"""Named data sets: verified copies from an offline folder, checksum mismatches, and the offline message.

Downloads from the upstream layout over HTTP are in tests/integration/test_fetch_upstream.py."""

from __future__ import annotations

import shutil

import pytest
from click.testing import CliRunner

from yieldtune.cli.main import main
from yieldtune.data import DATASETS, fetch_dataset, resolve_dataset, sha256_file
from yieldtune.data.fetch import dataset_spec
from yieldtune.errors import DataError


def run(*args, env=None):
    return CliRunner().invoke(main, ["data", *map(str, args)], env=env)


def offline_copy(shared_data, tmp_path, folder, name, corrupt=False):
    """A data dir holding one file (optionally with one byte changed)."""
    root = tmp_path / "offline"
    (root / folder).mkdir(parents=True)
    dest = root / folder / name
    shutil.copyfile(shared_data / folder / name, dest)
    if corrupt:
        data = bytearray(dest.read_bytes())
        data[100] = ord("X") if data[100] != ord("X") else ord("Y")
        dest.write_bytes(bytes(data))
    return root


def test_registry_entries():
    assert set(DATASETS) == {"buchwald-hartwig", "suzuki-miyaura", "aichem2024", "synthetic"}
    bh = DATASETS["buchwald-hartwig"]
    assert [f.name for f in bh.files][:2] == ["FullCV_01.csv", "FullCV_02.csv"] and len(bh.files) == 14
    assert bh.file("FullCV_03").train_n == 2767 and bh.file("Test1").train_n == 3057
    assert bh.spec.layout == "rxn" and bh.spec.target == "yield"
    assert all(len(f.sha256) == 64 and f.source.path.endswith(".xlsx") for f in bh.files)
    sm = DATASETS["suzuki-miyaura"]
    assert len(sm.files) == 10 and {f.train_n for f in sm.files} == {4032}
    ai = DATASETS["aichem2024"]
    assert ai.spec.layout == "components" and ai.spec_for("round1_test_data.csv").target is None


@pytest.mark.shared_data
def test_checksums_match_the_reference_copies(shared_data):
    for ds in DATASETS.values():
        for f in ds.files:
            if f.sha256:
                assert sha256_file(shared_data / ds.folder / f.name) == f.sha256, f.name


@pytest.mark.shared_data
def test_fetch_from_data_dir_verifies_and_copies(shared_data, tmp_path):
    cache = tmp_path / "cache"
    result = run("fetch", "buchwald-hartwig", "--file", "FullCV_01.csv", "--data-dir", shared_data,
                 "--cache-dir", cache)
    assert result.exit_code == 0, result.output
    copied = cache / "buchwald_hartwig" / "FullCV_01.csv"
    assert copied.read_bytes() == (shared_data / "buchwald_hartwig" / "FullCV_01.csv").read_bytes()
    assert sorted(p.name for p in copied.parent.iterdir()) == ["FullCV_01.csv"]
    # Once cached, resolving needs no data dir and no network.
    assert resolve_dataset("buchwald-hartwig", cache_dir=cache) == copied
    # An offline copy is used in place by resolve_dataset.
    assert resolve_dataset("aichem2024:round1_test_data", shared_data, cache_dir=cache) == \
        shared_data / "aichem2024" / "round1_test_data.csv"
    assert dataset_spec("aichem2024:round1_test_data").target is None


@pytest.mark.shared_data
def test_fetch_env_data_dir(shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv("TUNE_DATA_DIR", str(shared_data))
    monkeypatch.setenv("TUNE_CACHE_DIR", str(tmp_path / "c"))
    folder = fetch_dataset("suzuki-miyaura", files=["random_split_0.csv"])
    assert folder == tmp_path / "c" / "suzuki_miyaura" and (folder / "random_split_0.csv").is_file()


@pytest.mark.shared_data
def test_checksum_mismatch_in_data_dir(shared_data, tmp_path):
    root = offline_copy(shared_data, tmp_path, "buchwald_hartwig", "FullCV_02.csv", corrupt=True)
    cache = tmp_path / "cache"
    result = run("fetch", "buchwald-hartwig", "--file", "FullCV_02", "--data-dir", root, "--cache-dir", cache)
    assert result.exit_code == 2
    assert "checksum mismatch" in result.stderr and "FullCV_02.csv" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (cache / "buchwald_hartwig" / "FullCV_02.csv").exists()
    with pytest.raises(DataError, match="checksum mismatch"):
        resolve_dataset("buchwald-hartwig:FullCV_02", root, cache_dir=cache)


def test_offline_gives_one_clear_message(tmp_path):
    cache = tmp_path / "cache"
    result = run("fetch", "suzuki-miyaura", "--cache-dir", cache, "--mirror", "http://127.0.0.1:9/",
                 env={"TUNE_DATA_DIR": ""})
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output
    assert "cannot download http://127.0.0.1:9/data/Suzuki-Miyaura/random_splits/random_split_0.tsv" in lines[0]
    assert "--data-dir" in lines[0]
    leftovers = [p for p in cache.rglob("*") if p.is_file()]
    assert leftovers == []


def test_synthetic_is_generated_locally(tmp_path):
    path = resolve_dataset("synthetic", cache_dir=tmp_path)
    assert path == tmp_path / "synthetic" / "synthetic_plate.csv"
    assert len(path.read_text().splitlines()) == 865


def test_existing_path_passes_through_and_unknown_names_fail(tmp_path):
    f = tmp_path / "mine.csv"
    f.write_text("x\n")
    assert resolve_dataset(str(f)) == f
    with pytest.raises(DataError, match="no such file or data set 'missing.csv'"):
        resolve_dataset("missing.csv")
    with pytest.raises(DataError, match="has no file 'FullCV_99'"):
        resolve_dataset("buchwald-hartwig:FullCV_99", cache_dir=tmp_path)
