"""The transformers engine: prefill once, then one token per step through the KV cache, on the model's device.

`load_cpu_engine` loads for the CPU; the GPU variants load in `gpu_loading` and wrap the model the same way.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gptoss_hub.backends.transformers.sampling import next_token
from pydantic import BaseModel, ConfigDict

from gptoss_hub.engine import (
    Capabilities,
    Engine,
    EngineInfo,
    GenerationChunk,
    GenerationRequest,
    LoadRequest,
    token_chunk,
    validate_options,
)
from gptoss_hub.errors import BackendError, InvalidRequestError

__all__ = ["CpuOptions", "TransformersEngine", "load_cpu_engine", "progress_only_when_long"]


class CpuOptions(BaseModel):
    """Options `gh.load(..., backend="transformers/cpu", **options)` accepts."""

    model_config = ConfigDict(extra="forbid")

    #: "auto" keeps the checkpoint's dtype (fp32 for the tiny ones); "bfloat16" or "float32" force one.
    dtype: str = "auto"
    #: Torch intra-op threads; `None` keeps torch's default (all usable cores).
    threads: int | None = None


def _parse_options(request: LoadRequest) -> CpuOptions:
    parsed = validate_options(CpuOptions, dict(request.options), "transformers/cpu")
    if request.device not in (None, "cpu"):
        raise InvalidRequestError(f"transformers/cpu runs on device 'cpu', not {request.device!r}.")
    if parsed.dtype not in ("auto", "float32", "bfloat16"):
        raise InvalidRequestError(f"dtype must be 'auto', 'float32' or 'bfloat16', got {parsed.dtype!r}.")
    return parsed


def load_cpu_engine(request: LoadRequest) -> TransformersEngine:
    """Fetch (if needed) and load a gpt-oss checkpoint on the CPU; the context is capped at `request.context`."""
    parsed = _parse_options(request)
    spec = request.spec
    import torch
    from transformers import AutoConfig, GptOssForCausalLM

    folder = spec.checkpoint_dir()
    if parsed.threads:
        torch.set_num_threads(parsed.threads)
    config = AutoConfig.from_pretrained(folder)
    kwargs: dict[str, Any] = {}
    quantization = None
    quant = getattr(config, "quantization_config", None)
    if (
        quant
        and (quant.get("quant_method") if isinstance(quant, dict) else getattr(quant, "quant_method", None)) == "mxfp4"
    ):
        from transformers import Mxfp4Config

        # The MXFP4 kernels need a GPU; on the CPU the experts must be dequantized to bf16, which we
        # ask for explicitly rather than letting transformers decide behind a warning.
        kwargs["quantization_config"] = Mxfp4Config(dequantize=True)
        quantization = "mxfp4 (dequantized on the CPU)"
    dtype = {"auto": "auto", "float32": torch.float32, "bfloat16": torch.bfloat16}[parsed.dtype]
    try:
        with progress_only_when_long(folder):
            model = GptOssForCausalLM.from_pretrained(folder, dtype=dtype, attn_implementation="eager", **kwargs)
    except Exception as exc:
        raise BackendError(f"transformers could not load {spec.name} from {folder}: {exc}") from exc
    model.eval()
    if quantization is not None:
        _match_expert_dtype(model)
    max_context = min(filter(None, (request.context, config.max_position_embeddings)))
    return TransformersEngine(
        model, max_context=max_context, quantization=quantization, threads=torch.get_num_threads()
    )


#: Checkpoints smaller than this load in about a second: a progress bar for them is noise.
_SMALL_CHECKPOINT_BYTES = 1024**3


@contextlib.contextmanager
def progress_only_when_long(folder: Path) -> Iterator[None]:
    """transformers' "Loading weights" bar for checkpoints that take a while to load; none for small ones (the
    tiny checkpoints' 37 tensors load at once, and their bar only clutters a chat)."""
    from transformers.utils import logging as transformers_logging

    size = sum(path.stat().st_size for path in folder.glob("*.safetensors"))
    quiet = size < _SMALL_CHECKPOINT_BYTES and transformers_logging.is_progress_bar_enabled()
    if quiet:
        transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if quiet:
            transformers_logging.enable_progress_bar()


def _match_expert_dtype(model: Any) -> None:
    """Give dequantized MXFP4 expert weights the dtype of their biases (the dtype the model was loaded in).

    transformers dequantizes the experts to bfloat16 whatever dtype was asked for, and its expert matmul then
    runs the activations in bfloat16 too. Every MXFP4 value is exact in bfloat16, so widening loses nothing.
    Only the expert weights are touched: modules transformers keeps in float32 on purpose stay as they are.
    """
    for name, module in model.named_modules():
        if not name.endswith("mlp.experts"):
            continue
        for weight in ("gate_up_proj", "down_proj"):
            parameter, bias = getattr(module, weight, None), getattr(module, f"{weight}_bias", None)
            if parameter is not None and bias is not None and parameter.dtype != bias.dtype:
                parameter.data = parameter.data.to(bias.dtype)


class TransformersEngine(Engine):
    """Generates with a loaded `GptOssForCausalLM`, one request at a time, on whatever device it was loaded.

    Prompt ids go to the device of the model's first weights (the embeddings, also under a multi-GPU
    `device_map`). Under torchrun with tensor parallel every process runs this loop in step; the token
    process 0 picks is the one all of them feed back, so sampling without a seed cannot make them diverge.
    """

    def __init__(
        self,
        model: Any,
        *,
        max_context: int,
        quantization: str | None,
        threads: int | None = None,
        attention: str = "eager",
        details: dict[str, Any] | None = None,
    ):
        self.model = model
        self._device = model.device
        self.capabilities = Capabilities(streaming=True, batching=False, max_context=max_context)
        extra = {"threads": threads} if threads is not None else {}
        self.info = EngineInfo(
            device=str(self._device),
            dtype=str(model.dtype).removeprefix("torch."),
            quantization=quantization,
            attention=attention,
            details={**extra, "transformers_class": type(model).__name__, **(details or {})},
        )
        # One forward pass at a time: the model object is not re-entrant, so concurrent callers queue.
        self._lock = threading.Lock()

    def generate(self, request: GenerationRequest) -> Iterator[GenerationChunk]:
        """Prefill the prompt, then decode token by token through the KV cache."""
        import torch

        if request.json_schema is not None or request.logprobs is not None:
            raise InvalidRequestError("the transformers backend supports neither json_schema nor logprobs.")
        budget = self.check_context(request)
        stops = set(request.stop_token_ids)
        device = self._device
        # The generator lives where the logits are: torch samples on the model's device.
        generator = torch.Generator(device=device).manual_seed(request.seed) if request.seed is not None else None
        with self._lock, torch.inference_mode():
            # Logits of the last position only: all of them would be prompt length x 201,088 floats (2.9 GB
            # for a 3,500-token prompt), of which sampling reads one row.
            outputs = self.model(
                input_ids=torch.tensor([request.prompt_ids], device=device), use_cache=True, logits_to_keep=1
            )
            for produced in range(1, budget + 1):
                token = _agreed(next_token(outputs.logits[0, -1], request, generator), device)
                chunk = token_chunk(token, produced, budget, token in stops)
                yield chunk
                if chunk.finish_reason:
                    return
                outputs = self.model(
                    input_ids=torch.tensor([[token]], device=device),
                    past_key_values=outputs.past_key_values,
                    use_cache=True,
                    logits_to_keep=1,
                )

    def close(self) -> None:
        """Drop the model so its memory can be freed (GPU memory too)."""
        if self.model is None:
            return
        self.model = None
        if self._device.type == "cuda":
            import gc

            import torch

            gc.collect()
            torch.cuda.empty_cache()


def _agreed(token: int, device: Any) -> int:
    """The token process 0 picked, when several torchrun processes generate together; else `token`."""
    import torch

    distributed = torch.distributed
    if not (distributed.is_available() and distributed.is_initialized() and distributed.get_world_size() > 1):
        return token
    shared = torch.tensor([token], device=device)
    distributed.broadcast(shared, src=0)
    return int(shared.item())
