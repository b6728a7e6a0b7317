"""Getting named data set files onto local disk, verified by SHA-256.

Order of preference: an offline copy (``data_dir`` / TUNE_DATA_DIR, laid out ``<dir>/<folder>/<file>``),
then the cache (``cache_dir`` / TUNE_CACHE_DIR, default ~/.cache/yieldtune), then a download of the upstream
files (rxn_yields at a fixed commit, or a mirror with its layout) into ``<cache>/upstream/``, converted into
the cache. Upstream files and converted files are both checked by SHA-256; a file whose checksum does not
match is never used, and a failed download or conversion never leaves a file behind.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path

from yieldtune.data.registry import AICHEM_SOURCE, RXN_YIELDS_RAW, Dataset, DatasetFile, UpstreamFile, get_dataset
from yieldtune.errors import DataError
from yieldtune.files import atomic_path, sha256_file, write_atomic

_CHUNK = 1 << 20


def default_cache_dir() -> Path:
    """TUNE_CACHE_DIR, else ~/.cache/yieldtune."""
    env = os.environ.get("TUNE_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "yieldtune"


def _data_dir(data_dir: str | Path | None) -> Path | None:
    chosen = data_dir if data_dir is not None else os.environ.get("TUNE_DATA_DIR") or None
    return Path(chosen).expanduser() if chosen else None


def verify_file(path: Path, expected: str | None) -> Path:
    """``path`` when its SHA-256 is ``expected`` (or nothing is expected), else a DataError."""
    if expected is not None:
        actual = sha256_file(path)
        if actual != expected:
            raise DataError(f"checksum mismatch: SHA-256 is {actual}, expected {expected} "
                            "(corrupted or a different version of the file)", path=str(path))
    return path


def _copy_atomic(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(dest, suffix=".part") as tmp:
        shutil.copyfile(src, tmp)


def download_file(url: str, dest: str | Path, sha256: str | None, *, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` through a temporary file, verifying SHA-256 before it appears at ``dest``.

    No network (or an unreachable host) raises a DataError that suggests ``--data-dir``.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha256()
    with atomic_path(dest, suffix=".part") as tmp:
        try:
            with open(tmp, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
                for chunk in iter(lambda: resp.read(_CHUNK), b""):
                    h.update(chunk)
                    out.write(chunk)
        except (TimeoutError, urllib.error.URLError, ConnectionError) as err:
            reason = getattr(err, "reason", None) or err
            raise DataError(f"cannot download {url} ({reason}); offline? fetch with --data-dir DIR "
                            f"(or TUNE_DATA_DIR) pointing at a local copy laid out as DIR/<folder>/<file>, "
                            f"or --mirror URL serving the upstream layout",
                            path=str(dest)) from None
        if sha256 is not None and h.hexdigest() != sha256:
            raise DataError(f"checksum mismatch for {url}: SHA-256 is {h.hexdigest()}, expected {sha256}; "
                            "the download was discarded", path=str(dest))
    return dest


def _mirror(mirror: str | None) -> str | None:
    return mirror if mirror is not None else os.environ.get("TUNE_DATA_MIRROR") or None


def _cached(path: Path, sha256: str | None) -> bool:
    return path.is_file() and sha256_file(path) == sha256


def _upstream_file(src: UpstreamFile, cache: Path, mirror: str | None) -> Path:
    """The verified upstream file in ``<cache>/upstream/``, downloaded from the mirror or upstream if absent."""
    dest = cache / "upstream" / "rxn_yields" / src.path
    if _cached(dest, src.sha256):
        return dest
    base = _mirror(mirror) or RXN_YIELDS_RAW
    return download_file(f"{base.rstrip('/')}/{src.path}", dest, src.sha256)


def _convert(src: UpstreamFile, local: Path, files: list[DatasetFile]) -> dict[str, str]:
    from yieldtune.data import upstream

    if src.kind == "bh-xlsx":
        sheets = upstream.convert_buchwald_hartwig(local, [f.name.removesuffix(".csv") for f in files])
        return {f.name: sheets[f.name.removesuffix(".csv")] for f in files}
    return {f.name: upstream.convert_suzuki_miyaura(local) for f in files}


def _download_and_convert(ds: Dataset, files: list[DatasetFile], cache: Path, mirror: str | None) -> None:
    """Put the converted ``files`` into the cache; all are converted and verified before any is written."""
    by_source: dict[UpstreamFile, list[DatasetFile]] = {}
    for f in files:
        by_source.setdefault(f.source, []).append(f)
    converted: dict[str, str] = {}
    for src, group in by_source.items():
        converted.update(_convert(src, _upstream_file(src, cache, mirror), group))
    for f in files:
        actual = hashlib.sha256(converted[f.name].encode()).hexdigest()
        if actual != f.sha256:
            from rdkit import __version__ as rdkit_version

            raise DataError(f"{ds.name}: converting {f.source.path} gave {f.name} with SHA-256 {actual}, expected "
                            f"{f.sha256} (RDKit {rdkit_version} writes some SMILES differently?); nothing was "
                            "cached: use --data-dir with a reference copy", path=str(cache / ds.folder))
    for f in files:
        write_atomic(cache / ds.folder / f.name, converted[f.name])


def _placed_by_hand(ds: Dataset, f: DatasetFile, cache: Path) -> Path:
    """A file without a download address (aichem2024), verified where the user put it, or how to get it."""
    dest = cache / ds.folder / f.name
    if not dest.is_file():
        raise DataError(f"{ds.name} has no stable download address: download {', '.join(x.name for x in ds.files)} "
                        f"from {AICHEM_SOURCE} and put them in {dest.parent}/ (or in DIR/{ds.folder}/ and pass "
                        f"--data-dir DIR), then run `tune data fetch {ds.name}` to verify them")
    return verify_file(dest, f.sha256)


def _fetch_files(ds: Dataset, files: list[DatasetFile], cache: Path, data_dir: Path | None, mirror: str | None,
                 *, copy: bool) -> list[Path]:
    """Local paths of verified files: from the offline copy, the cache, a generator, or upstream."""
    if ds.generated:
        from yieldtune.data.synth import write_synthetic_plate

        for f in files:
            if not (cache / ds.folder / f.name).exists():
                write_synthetic_plate(cache / ds.folder / f.name, seed=0)
        return [cache / ds.folder / f.name for f in files]
    if data_dir is not None:
        paths = []
        for f in files:
            src = data_dir / ds.folder / f.name
            if not src.is_file():
                raise DataError(f"{ds.name}: {f.name} is not in the offline copy (expected {src})",
                                path=str(data_dir))
            verify_file(src, f.sha256)
            dest = cache / ds.folder / f.name
            if copy and not _cached(dest, f.sha256):
                _copy_atomic(src, dest)
            paths.append(verify_file(dest, f.sha256) if copy else src)
        return paths
    missing = [f for f in files if f.source is not None and not _cached(cache / ds.folder / f.name, f.sha256)]
    if missing:
        _download_and_convert(ds, missing, cache, mirror)
    return [cache / ds.folder / f.name if f.source is not None else _placed_by_hand(ds, f, cache) for f in files]


def fetch_dataset(name: str, cache_dir: str | Path | None = None, *, data_dir: str | Path | None = None,
                  mirror: str | None = None, files: list[str] | None = None) -> Path:
    """Put the verified files of data set ``name`` into the cache and return its folder there.

    ``data_dir`` (or TUNE_DATA_DIR) is an offline copy to copy from; ``mirror`` (or TUNE_DATA_MIRROR) a base
    URL with the rxn_yields layout (``<mirror>/data/Buchwald-Hartwig/...``) to download the upstream files
    from instead of GitHub; ``files`` limits the fetch to some files of the set.
    """
    ds = get_dataset(name)
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    chosen = [ds.file(n) for n in files] if files else list(ds.files)
    _fetch_files(ds, chosen, cache, _data_dir(data_dir), mirror, copy=True)
    return cache / ds.folder


def parse_dataset_ref(name_or_path: str) -> tuple[Dataset, DatasetFile] | None:
    """``"buchwald-hartwig"``, ``"buchwald-hartwig:Test1"`` or ``"buchwald-hartwig/Test1.csv"`` -> (set, file)."""
    for sep in (":", "/"):
        name, found, file = str(name_or_path).partition(sep)
        if name in _registry():
            ds = get_dataset(name)
            return ds, ds.file(file if found else None)
    return None


def _registry():
    from yieldtune.data.registry import DATASETS

    return DATASETS


def resolve_dataset(name_or_path: str | Path, data_dir: str | Path | None = None, *,
                    cache_dir: str | Path | None = None, mirror: str | None = None) -> Path:
    """A local, verified file for a data set reference, or an existing path unchanged.

    Offline copies are used in place (not copied); otherwise the file comes from, or is fetched into, the cache.
    """
    p = Path(name_or_path).expanduser()
    if p.exists():
        return p
    ref = parse_dataset_ref(str(name_or_path))
    if ref is None:
        raise DataError(f"no such file or data set {str(name_or_path)!r}; data sets: {', '.join(_registry())} "
                        "(optionally NAME:FILE)")
    ds, f = ref
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return _fetch_files(ds, [f], cache, _data_dir(data_dir), mirror, copy=False)[0]


def dataset_spec(name_or_path: str | Path):
    """The DataSpec of a named data set reference, or None for a plain path."""
    ref = None if Path(name_or_path).expanduser().exists() else parse_dataset_ref(str(name_or_path))
    if ref is None:
        return None
    ds, f = ref
    return ds.spec_for(f.name)
