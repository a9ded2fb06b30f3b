"""The MLX backend: gpt-oss on Apple silicon through MLX and mlx-lm, with the hub's harmony.

Variants: `mlx/metal` (Apple silicon GPU, unified memory) and `mlx/cpu` (MLX's CPU build; it runs on Linux
too, which is how the backend is tested without a Mac). `backend="mlx"` picks the best one that can run.
Harmony stays with the hub: MLX receives token ids and returns token ids, so reasoning, tool calls and the
builtin tools work as on every other backend.

Sources: Hugging Face folders and repos as released (MXFP4 experts run as MLX `mxfp4` matmuls) or as
transformers saves them (bf16, float32), and MLX-converted repos (`mlx-community/…`, 4- and 8-bit).
`gptoss_hub.backends.mlx.loading` fixes what mlx-lm gets wrong for these checkpoints.

When MLX is chosen (docs/architecture.md): on Apple silicon `llamacpp/metal` ranks first for the released
models and GGUF files: it processes prompts faster for gpt-oss (about 1.5x, with decoding about 10%
faster, on an M1 Pro: ml-explore/mlx-lm#858). `mlx/metal` comes next, and is chosen where llama.cpp
cannot run: a safetensors checkpoint (a fine-tune, an MLX-converted repo), llama-cpp-python missing or
built without Metal; or when asked for (`backend="mlx"`, `GPTOSS_HUB_BACKEND=mlx`).

Options (`gh.load(model, backend="mlx", **options)`): see `MlxOptions`.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from gptoss_hub.engine import Backend, validate_options
from gptoss_hub.memory import UNIFIED_GPU_SHARE, context_tokens, memory_reasons, mlx_memory
from gptoss_hub.plugins import hookimpl
from gptoss_hub.shape import read_shape

if TYPE_CHECKING:
    from pathlib import Path

    from gptoss_hub.hardware import HardwareReport

    from gptoss_hub.engine import Engine, LoadRequest
    from gptoss_hub.memory import MemoryEstimate
    from gptoss_hub.plugins import BackendRegistry
    from gptoss_hub.sources import ModelSpec

__all__ = ["MIN_GLIBC", "MLX_BACKENDS", "MlxBackend", "MlxOptions"]

_INSTALL = "pip install 'gptoss-hub[mlx]'"
#: The oldest glibc MLX's Linux wheels run on (they are built as manylinux_2_35).
MIN_GLIBC = (2, 35)
#: Prompt ids evaluated per forward pass while prefilling (mlx-lm's default).
DEFAULT_PREFILL_STEP = 2048


class MlxOptions(BaseModel):
    """Options `gh.load(..., backend="mlx", **options)` accepts."""

    model_config = ConfigDict(extra="forbid")

    #: For the tiny reference checkpoints only: "f32" (default) or "mxfp4" (the export in the released layout).
    quantization: str | None = None
    #: Prompt ids evaluated per forward pass; smaller holds less memory during a long prefill.
    prefill_step: int = Field(default=DEFAULT_PREFILL_STEP, ge=1)


class MlxBackend(Backend):
    """MLX through mlx-lm on one device; `device` says which ("metal" or "cpu")."""

    device: ClassVar[str]

    def check(self, report: HardwareReport, spec: ModelSpec) -> list[str]:
        """Reasons MLX cannot run `spec` on this device here: not a Mac (for Metal), no MLX build for the
        device, glibc too old for MLX's Linux wheels, not installed, a source it cannot read, memory."""
        reasons = []
        device = self._device_reason(report)
        if device:
            reasons.append(device)
        installed = self._install_reason(report)
        if installed:
            reasons.append(installed)
        problem = source_problem(spec)
        if problem:
            reasons.append(problem)
        if device is None:
            reasons.extend(memory_reasons(spec, self.memory_estimate(report, spec)))
        return reasons

    def _device_reason(self, report: HardwareReport) -> str | None:
        if self.device != "metal":
            return None
        if report.os != "Darwin":
            return f"MLX reaches a GPU through Metal, on macOS with Apple silicon; this machine runs {report.os}."
        if not any(a.api == "metal" for a in report.accelerators):
            why = report.rejections.get("apple", "no Apple silicon GPU was found")
            return f"no Apple silicon GPU for MLX: {why}."
        return None

    def _install_reason(self, report: HardwareReport) -> str | None:
        missing = [name for name, runtime in (("mlx", "mlx"), ("mlx-lm", "mlx_lm")) if runtime not in report.runtimes]
        if missing:
            if report.os not in ("Darwin", "Linux"):
                return f"MLX has no build for {report.os}; it runs on macOS (Apple silicon) and Linux."
            glibc = _glibc(report.libc)
            if report.os == "Linux" and glibc is not None and glibc < MIN_GLIBC:
                return (
                    f"MLX's Linux wheels need glibc {MIN_GLIBC[0]}.{MIN_GLIBC[1]} or newer; this machine has "
                    f"{report.libc}, so MLX cannot be installed here."
                )
            return f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not installed: {_INSTALL}."
        if not report.runtime_supports("mlx", self.device):
            build = {"metal": "mlx-metal (macOS on Apple silicon)", "cpu": "mlx[cpu] on Linux"}[self.device]
            return f"MLX here has no {self.device} build: install {build} ({_INSTALL})."
        return None

    def memory_estimate(self, report: HardwareReport, spec: ModelSpec) -> MemoryEstimate | None:
        """The weights as stored, the KV caches and a margin; against the share of unified memory Metal may
        use (`mlx/metal`) or the RAM (`mlx/cpu`)."""
        if source_problem(spec):
            return None
        reading = read_shape(spec)
        if reading.shape is None:
            return None
        if self.device == "metal":
            total = sum(a.memory_total_bytes or 0 for a in report.accelerators if a.api == "metal")
            available: int | None = int(total * UNIFIED_GPU_SHARE) if total else None
            what = f"Metal may use about {{gib}} GiB of this machine's {total / 1024**3:.0f} GiB of unified memory"
        else:
            available, what = report.cpu.ram_usable_bytes, "this machine has {gib} GiB of RAM"
        return mlx_memory(
            reading, context_tokens(spec), prefill_step=DEFAULT_PREFILL_STEP, available=available, available_what=what
        )

    def load(self, request: LoadRequest) -> Engine:
        """Find (or download) the checkpoint and load it with MLX on this variant's device; see `MlxOptions`."""
        from gptoss_hub.backends.mlx.engine import MlxEngine

        from gptoss_hub.errors import InvalidRequestError

        options = validate_options(MlxOptions, dict(request.options), "mlx")
        if request.device not in (None, self.device):
            raise InvalidRequestError(
                f"{self.name} runs on {self.device}, not {request.device!r}; `gptoss-hub plan MODEL --backend "
                f"mlx/{request.device}` shows why that variant cannot run here."
            )
        problem = source_problem(request.spec)
        if problem:
            raise InvalidRequestError(problem)
        folder = checkpoint_folder(request.spec, options.quantization)
        return MlxEngine.open(
            folder, device=self.device, max_context=request.context, prefill_step=options.prefill_step
        )


def source_problem(spec: ModelSpec) -> str | None:
    """Why MLX cannot read what `spec` names (a sentence), or `None` when it can."""
    if spec.gguf_only:
        return f"{spec.name} is GGUF; MLX loads safetensors checkpoints. Run it with backend='llamacpp'."
    if spec.kind == "local_dir" and spec.path is not None and not any(spec.path.glob("*.safetensors")):
        return f"{spec.path} holds no .safetensors file; MLX loads safetensors checkpoints."
    if spec.kind == "endpoint":
        return "MLX runs local checkpoints, not a remote endpoint."
    return None


def checkpoint_folder(spec: ModelSpec, quantization: str | None) -> Path:
    """The folder to load: the tiny reference checkpoint (or its MXFP4 export), or the model's files,
    downloaded first where needed (weights and config only)."""
    from gptoss_hub.errors import InvalidRequestError

    if spec.kind == "reference":
        from gptoss_hub.testing import checkpoint_path, mxfp4_checkpoint_path

        if quantization in (None, "f32"):
            return checkpoint_path(spec.name)
        if quantization == "mxfp4":
            return mxfp4_checkpoint_path(spec.name)
        raise InvalidRequestError(f"quantization for {spec.name} is 'f32' or 'mxfp4', not {quantization!r}.")
    if quantization is not None:
        raise InvalidRequestError(
            "quantization= chooses among the reference checkpoint's exports; a repo or folder is loaded as it is "
            "stored (pick an MLX-converted repo such as mlx-community/gpt-oss-20b-MXFP4-Q8 for another form)."
        )
    return spec.checkpoint_dir()


def _glibc(libc: str | None) -> tuple[int, int] | None:
    match = re.fullmatch(r"glibc (\d+)\.(\d+).*", libc or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


def _variant(device: str, rank: int, description: str) -> type[MlxBackend]:
    return type(
        f"Mlx_{device}",
        (MlxBackend,),
        {"name": f"mlx/{device}", "rank": rank, "device": device, "description": description},
    )


#: The MLX variants: `mlx/metal` right below `llamacpp/metal` (55), `mlx/cpu` below every other CPU backend.
MLX_BACKENDS = (
    _variant("metal", 52, "MLX (mlx-lm) on Apple silicon's GPU, unified memory; safetensors, MXFP4 or MLX-quantized"),
    _variant("cpu", 5, "MLX (mlx-lm) on the CPU; safetensors, MXFP4 or MLX-quantized"),
)


@hookimpl
def gptoss_hub_register_backends(registry: BackendRegistry) -> None:
    """Register the MLX variants."""
    for backend in MLX_BACKENDS:
        registry.add(backend)
