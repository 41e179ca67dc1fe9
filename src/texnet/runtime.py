"""Where and how a trained generator runs: onnxruntime or PyTorch, float32 or bfloat16.

Nothing here imports PyTorch: sampling a built-in texture with onnxruntime starts in a fraction
of the time `import torch` takes (README, "Speed on every machine").
"""

from __future__ import annotations

import functools
import os
import platform
from pathlib import Path

import numpy as np

from .errors import TexnetError

BACKENDS = ("auto", "onnx", "torch")
ONNX_NAME = "model.onnx"
WEIGHTS_SHA256_KEY = "texnet.weights_sha256"  # in model.onnx's metadata: the model.safetensors it reads
# Bytes of memory a whole-image pass adds per output pixel, measured with benchmarks/runtime.py
# at 1024 and 2048 px (peak RSS added; 730, 1,080 and 540-620 measured): the finest scale's
# 48-channel maps dominate.
DEFAULT_BUDGET = 4_000_000_000
BYTES_PER_PIXEL = {"onnx": 750, "torch-float32": 1100, "torch-bfloat16": 650}


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags as Linux reports them (x86 'flags', Arm 'Features'); empty elsewhere."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                if key.strip() in ("flags", "Features"):
                    return frozenset(value.split())
    except OSError:
        pass
    return frozenset()


# oneDNN instruction sets with bfloat16 arithmetic (ONEDNN_MAX_CPU_ISA names; DEFAULT and ALL set no limit).
ONEDNN_BF16_ISAS = ("AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX512_CORE_AMX", "AVX10", "DEFAULT", "ALL")


def isa_limited_below_bf16() -> bool:
    """Whether PyTorch was told to use instruction sets without bfloat16 arithmetic
    (ATEN_CPU_CAPABILITY=avx2 or default, ONEDNN_MAX_CPU_ISA=AVX2 ...): then it emulates bfloat16
    even on a CPU that has it, as on an AVX2-only CPU."""
    capability = os.environ.get("ATEN_CPU_CAPABILITY", "").strip().lower()
    onednn = os.environ.get("ONEDNN_MAX_CPU_ISA", "").strip().upper()
    return capability in ("default", "avx2") or bool(onednn) and not onednn.startswith(ONEDNN_BF16_ISAS)


def native_bf16_cpu() -> bool:
    """Whether this CPU computes bfloat16 in hardware (AVX-512 BF16 or AMX on x86, BF16 on Arm),
    and PyTorch may use it. Elsewhere PyTorch emulates it, 10 to 100 times slower than float32."""
    flags = cpu_flags()
    if platform.machine().lower() in ("aarch64", "arm64"):
        return "bf16" in flags
    return bool({"avx512_bf16", "amx_bf16"} & flags) and not isa_limited_below_bf16()


def available_memory() -> int | None:
    """Bytes of memory available to new allocations (Linux's MemAvailable), or None if unknown."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def memory_budget(limit_mb: float | None = None) -> int:
    """Bytes one generator pass may add: `limit_mb` if given (also from $TEXNET_MEMORY_LIMIT_MB),
    else 80% of the memory available now, at most 4 GB (outputs up to about 2048 x 2048 run in one
    pass; larger ones in strips, which cost more compute but no more memory)."""
    if limit_mb is None and os.environ.get("TEXNET_MEMORY_LIMIT_MB"):
        try:
            limit_mb = float(os.environ["TEXNET_MEMORY_LIMIT_MB"])
        except ValueError:
            raise TexnetError(f"$TEXNET_MEMORY_LIMIT_MB must be a number of megabytes, "
                              f"not {os.environ['TEXNET_MEMORY_LIMIT_MB']!r}") from None
    if limit_mb is not None:
        if not 16 <= limit_mb < 1e9:
            raise TexnetError(f"the memory limit must be at least 16 MB, not {limit_mb:g}")
        return int(limit_mb * 1e6)
    available = available_memory()
    return min(int(0.8 * available), DEFAULT_BUDGET) if available else DEFAULT_BUDGET


def check_memory(needed: float, what: str, hint: str) -> None:
    """Refuse work that would need more memory than is available, before it starts."""
    available = available_memory()
    if available is not None and needed > 0.9 * available:
        raise TexnetError(f"{what} needs about {needed / 1e9:.1f} GB of memory and {available / 1e9:.1f} GB "
                          f"is available; {hint}")


def onnxruntime_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None


def choose_backend(requested: str, device: str, has_onnx: bool, whole_image_fits: bool,
                   bf16: bool | None = None) -> str:
    """onnxruntime where it can run the job (measured at least as fast as PyTorch on every CPU we
    have, and it starts without importing PyTorch); PyTorch for GPUs, for models without an ONNX
    graph, for bfloat16 when asked for, and for outputs too large for one pass (PyTorch generates
    them in exact strips)."""
    if requested not in BACKENDS:
        raise TexnetError(f"backend must be one of {', '.join(BACKENDS)}, not {requested!r}")
    onnx_possible = device == "cpu" and has_onnx and onnxruntime_available() and not bf16
    if requested == "onnx":
        if bf16:
            raise TexnetError("bfloat16 runs with PyTorch: use --backend torch (or auto) with --bf16")
        if device != "cpu":
            raise TexnetError("--backend onnx runs on the CPU; use --backend torch with --device cuda")
        if not has_onnx:
            raise TexnetError(f"this model has no {ONNX_NAME}; use --backend torch (or re-save it with texnet)")
        if not onnxruntime_available():
            raise TexnetError("onnxruntime is not installed; pip install onnxruntime, or use --backend torch")
        return "onnx"
    if requested == "torch" or not onnx_possible or not whole_image_fits:
        return "torch"
    return "onnx"


def weights_digest(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_weights_digest(folder: Path, expected: str | None) -> None:
    """model.safetensors must be the file the model was saved with (config.json records its hash;
    older models without one are not checked)."""
    if expected is not None and weights_digest(folder / "model.safetensors") != expected:
        raise TexnetError(f"{folder}: model.safetensors is not the file this model was saved with (its hash "
                          "differs from the one in config.json); it is corrupt, truncated or replaced")


class OnnxRunner:
    """A model folder's model.onnx in onnxruntime. Its weights are read from the folder's
    model.safetensors, whose hash must be the one recorded at export: a replaced or damaged
    weights file is refused instead of being read as the wrong numbers."""

    def __init__(self, folder: Path, input_names: list[str], weights_sha256: str | None):
        import onnxruntime as ort

        check_weights_digest(folder, weights_sha256)
        options = ort.SessionOptions()
        options.log_severity_level = 4  # its own log lines would break the one-line error promise
        # Denormal floats cost 2x on some CPUs (measured on an AVX2 EPYC) and change nothing visible.
        options.add_session_config_entry("session.set_denormal_as_zero", "1")
        try:
            self.session = ort.InferenceSession(str(folder / ONNX_NAME), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own exception types for every kind of bad file
            raise TexnetError(f"{folder}: {ONNX_NAME} cannot be loaded ({first_line(error)})") from None
        recorded = self.session.get_modelmeta().custom_metadata_map.get(WEIGHTS_SHA256_KEY)
        if recorded is not None and recorded != weights_digest(folder / "model.safetensors"):
            raise TexnetError(f"{folder}: model.safetensors is not the file {ONNX_NAME} was exported with; "
                              f"delete {ONNX_NAME} to use the weights with --backend torch")
        names = [graph_input.name for graph_input in self.session.get_inputs()]
        if names != input_names:
            raise TexnetError(f"{folder}: {ONNX_NAME} takes inputs {names}, expected {input_names}")
        self.input_names = input_names

    def run(self, inputs: list[np.ndarray]) -> np.ndarray:
        feeds = {name: np.ascontiguousarray(value, dtype=np.float32) for name, value in zip(self.input_names, inputs)}
        try:
            return self.session.run(None, feeds)[0]
        except Exception as error:
            raise TexnetError(f"onnxruntime failed: {first_line(error)}") from None


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
