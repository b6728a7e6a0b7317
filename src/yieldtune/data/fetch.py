"""Getting named data set files onto local disk, verified by SHA-256.

Order of preference: an offline copy (``data_dir`` / TUNE_DATA_DIR, laid out ``<dir>/<folder>/<file>``),
then the cache (``cache_dir`` / TUNE_CACHE_DIR, default ~/.cache/yieldtune), then a download into the
cache. A file whose checksum does not match is never used, and a failed download never leaves a file behind.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from yieldtune.data.registry import Dataset, DatasetFile, get_dataset
from yieldtune.errors import DataError

_CHUNK = 1 << 20


def default_cache_dir() -> Path:
    """TUNE_CACHE_DIR, else ~/.cache/yieldtune."""
    env = os.environ.get("TUNE_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "yieldtune"


def _data_dir(data_dir: str | Path | None) -> Path | None:
    chosen = data_dir if data_dir is not None else os.environ.get("TUNE_DATA_DIR") or None
    return Path(chosen).expanduser() if chosen else None


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


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
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def download_file(url: str, dest: str | Path, sha256: str | None, *, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` through a temporary file, verifying SHA-256 before it appears at ``dest``.

    No network (or an unreachable host) raises a DataError that suggests ``--data-dir``.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    h = hashlib.sha256()
    try:
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
                for chunk in iter(lambda: resp.read(_CHUNK), b""):
                    h.update(chunk)
                    out.write(chunk)
        except (urllib.error.URLError, socket.timeout, ConnectionError) as err:
            reason = getattr(err, "reason", None) or err
            raise DataError(f"cannot download {url} ({reason}); offline? fetch with --data-dir DIR "
                            f"(or TUNE_DATA_DIR) pointing at a local copy laid out as DIR/<folder>/<file>",
                            path=str(dest)) from None
        if sha256 is not None and h.hexdigest() != sha256:
            raise DataError(f"checksum mismatch for {url}: SHA-256 is {h.hexdigest()}, expected {sha256}; "
                            "the download was discarded", path=str(dest))
        os.replace(tmp, dest)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return dest


def _mirror(mirror: str | None) -> str | None:
    return mirror if mirror is not None else os.environ.get("TUNE_DATA_MIRROR") or None


def _fetch_file(ds: Dataset, f: DatasetFile, cache: Path, data_dir: Path | None, mirror: str | None,
                *, copy: bool) -> Path:
    """Local path of one verified file: from the offline copy, the cache, a generator, or a download."""
    if ds.generated:
        dest = cache / ds.folder / f.name
        if not dest.exists():
            from yieldtune.data.synth import write_synthetic_plate

            write_synthetic_plate(dest, seed=0)
        return dest
    if data_dir is not None:
        src = data_dir / ds.folder / f.name
        if not src.is_file():
            raise DataError(f"{ds.name}: {f.name} is not in the offline copy (expected {src})", path=str(data_dir))
        verify_file(src, f.sha256)
        if not copy:
            return src
        dest = cache / ds.folder / f.name
        if not (dest.is_file() and sha256_file(dest) == f.sha256):
            _copy_atomic(src, dest)
        return verify_file(dest, f.sha256)
    dest = cache / ds.folder / f.name
    if dest.is_file() and sha256_file(dest) == f.sha256:
        return dest
    base = _mirror(mirror)
    url = f"{base.rstrip('/')}/{ds.folder}/{f.name}" if base else f.url
    if url is None:
        raise DataError(f"{ds.name}: {f.name} has no download location; use --data-dir")
    return download_file(url, dest, f.sha256)


def fetch_dataset(name: str, cache_dir: str | Path | None = None, *, data_dir: str | Path | None = None,
                  mirror: str | None = None, files: list[str] | None = None) -> Path:
    """Put the verified files of data set ``name`` into the cache and return its folder there.

    ``data_dir`` (or TUNE_DATA_DIR) is an offline copy to copy from; ``mirror`` (or TUNE_DATA_MIRROR) a base
    URL laid out ``<mirror>/<folder>/<file>`` to download from instead of the upstream URLs; ``files``
    limits the fetch to some files of the set.
    """
    ds = get_dataset(name)
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    chosen = [ds.file(n) for n in files] if files else list(ds.files)
    for f in chosen:
        _fetch_file(ds, f, cache, _data_dir(data_dir), mirror, copy=True)
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
    return _fetch_file(ds, f, cache, _data_dir(data_dir), mirror, copy=False)


def dataset_spec(name_or_path: str | Path):
    """The DataSpec of a named data set reference, or None for a plain path."""
    ref = None if Path(name_or_path).expanduser().exists() else parse_dataset_ref(str(name_or_path))
    if ref is None:
        return None
    ds, f = ref
    return ds.spec_for(f.name)
