"""`tune data fetch` against a real HTTP server on 127.0.0.1 serving the rxn_yields upstream layout:
download -> SHA-256 check -> conversion -> cache, the converted rows equal to the reference CSVs, tampered
upstream files rejected with nothing cached, and aichem2024 verified once placed by hand."""

from __future__ import annotations

import csv
import functools
import http.server
import shutil
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from yieldtune.cli.main import main
from yieldtune.data import DATASETS

pytestmark = pytest.mark.shared_data


def fetch(*args):
    return CliRunner().invoke(main, ["data", "fetch", *map(str, args)], env={"TUNE_DATA_DIR": ""})


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def serve():
    """Start a real HTTP server on 127.0.0.1 serving a folder; returns its base URL."""
    servers = []

    def start(root: Path) -> str:
        handler = functools.partial(QuietHandler, directory=str(root))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def assert_same_rows(converted: Path, reference: Path) -> None:
    """Every row: the same reaction SMILES and a yield within 1e-6."""
    with open(converted, newline="") as a, open(reference, newline="") as b:
        got, want = list(csv.reader(a)), list(csv.reader(b))
    assert got[0] == want[0] == ["rxn", "yield"]
    assert len(got) == len(want), converted.name
    for i, (g, w) in enumerate(zip(got[1:], want[1:]), start=2):
        assert g[0] == w[0], f"{converted.name} row {i}"
        assert abs(float(g[1]) - float(w[1])) <= 1e-6, f"{converted.name} row {i}"


@pytest.mark.parametrize("name", ["buchwald-hartwig", "suzuki-miyaura"])
def test_fetch_downloads_verifies_converts_and_caches(shared_data, tmp_path, serve, name):
    base = serve(shared_data / "upstream" / "rxn_yields")
    cache = tmp_path / "cache"
    result = fetch(name, "--mirror", base, "--cache-dir", cache)
    assert result.exit_code == 0, result.output
    ds = DATASETS[name]
    assert sorted(p.name for p in (cache / ds.folder).iterdir()) == sorted(f.name for f in ds.files)
    for f in ds.files:
        assert_same_rows(cache / ds.folder / f.name, shared_data / ds.folder / f.name)
    # The verified upstream files stay cached: a second fetch needs no server at all.
    for f in ds.files:
        (cache / ds.folder / f.name).unlink()
    again = fetch(name, "--mirror", "http://127.0.0.1:9", "--cache-dir", cache)
    assert again.exit_code == 0, again.output
    assert (cache / ds.folder / ds.files[-1].name).read_bytes() == \
        (shared_data / ds.folder / ds.files[-1].name).read_bytes()


def test_tampered_upstream_file_is_one_line_error_and_nothing_is_cached(shared_data, tmp_path, serve):
    www = tmp_path / "www"
    upstream = shared_data / "upstream" / "rxn_yields" / "data" / "Suzuki-Miyaura"
    shutil.copytree(upstream, www / "data" / "Suzuki-Miyaura")
    tsv = www / "data" / "Suzuki-Miyaura" / "random_splits" / "random_split_4.tsv"
    tsv.write_bytes(tsv.read_bytes().replace(b"\t0.", b"\t1.", 1))
    cache = tmp_path / "cache"
    result = fetch("suzuki-miyaura", "--mirror", serve(www), "--cache-dir", cache)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output
    assert "checksum mismatch" in lines[0] and "random_split_4.tsv" in lines[0] and "discarded" in lines[0]
    # Files 0..3 were fetched before the bad one; nothing of file 4 and no partial file exists.
    leftovers = sorted(p.name for p in cache.rglob("*") if p.is_file())
    assert "random_split_4.tsv" not in leftovers and "random_split_4.csv" not in leftovers
    assert not [n for n in leftovers if n.endswith((".part", ".tmp"))]
    assert not (cache / "suzuki_miyaura").exists()  # converted files are written only when all verify


def test_aichem2024_says_where_to_get_it_and_verifies_it_once_placed(shared_data, tmp_path):
    cache = tmp_path / "cache"
    result = fetch("aichem2024", "--cache-dir", cache)
    assert result.exit_code == 2
    line = result.stderr.strip()
    assert "\n" not in line and "figshare record 30265270" in line and "2nd World AI4S Prize" in line
    assert f"{cache / 'aichem2024'}/" in line and "round1_train_data.csv" in line
    (cache / "aichem2024").mkdir(parents=True)
    for name in ("round1_train_data.csv", "round1_test_data.csv"):
        shutil.copyfile(shared_data / "aichem2024" / name, cache / "aichem2024" / name)
    ok = fetch("aichem2024", "--cache-dir", cache)
    assert ok.exit_code == 0 and "2 files verified" in ok.output
    bad = cache / "aichem2024" / "round1_test_data.csv"
    bad.write_bytes(bad.read_bytes()[:-10])
    wrong = fetch("aichem2024", "--cache-dir", cache)
    assert wrong.exit_code == 2 and "checksum mismatch" in wrong.stderr and "round1_test_data.csv" in wrong.stderr
