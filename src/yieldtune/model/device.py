"""Device and numeric-precision choice, shared by training, validation, prediction and the bench."""

from __future__ import annotations

import contextlib
from functools import lru_cache

import torch

from yieldtune.errors import ConfigError


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; an unavailable CUDA device is a :class:`ConfigError`."""
    if isinstance(name, torch.device):
        return name
    name = (name or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"--device: unknown device {name!r} (use cpu, cuda, cuda:N or auto)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {name}: CUDA is not available on this machine")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) present")
    elif dev.type not in ("cpu", "mps"):
        raise ConfigError(f"--device: unsupported device {name!r}")
    return dev


@lru_cache(maxsize=1)
def cpu_supports_bf16() -> bool:
    """Native bf16 matmuls on this CPU (AVX512-BF16 or AMX); emulated bf16 would be slower than fp32."""
    try:
        if "AVX512" not in torch.backends.cpu.get_cpu_capability():
            return False
        if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
            return False
    except (AttributeError, RuntimeError):
        return False
    try:
        with open("/proc/cpuinfo") as fh:
            flags = fh.read()
        return "avx512_bf16" in flags or "amx_bf16" in flags
    except OSError:  # not Linux: trust oneDNN's answer
        return True


CPU_BF16_MIN_D_MODEL = 128


def resolve_precision(precision: str, device: torch.device, d_model: int | None = None) -> str:
    """Turn ``auto`` into ``bf16``/``fp16``/``fp32`` for ``device``; explicit choices pass through.

    On CPU, bf16 only pays off once matrices are big enough for AMX/AVX512-BF16 to beat the casts:
    measured here, a d_model 32 step ran 2x slower in bf16, d_model 128 1.4x faster, 512 ~2.3x faster.
    So ``auto`` picks bf16 on CPU only from ``d_model >= 128`` (when ``d_model`` is given).
    """
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device.type == "cpu" and cpu_supports_bf16() and (d_model is None or d_model >= CPU_BF16_MIN_D_MODEL):
        return "bf16"
    return "fp32"


_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def autocast(precision: str, device: torch.device):
    """The autocast context for a resolved precision (a no-op for fp32)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=_DTYPES[precision])


def needs_grad_scaler(precision: str) -> bool:
    return precision == "fp16"
