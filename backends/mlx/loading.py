"""Loading gpt-oss into mlx-lm's model, with what mlx-lm gets wrong for gpt-oss checkpoints set right.

mlx-lm (`mlx_lm.models.gpt_oss`) loads the released MXFP4 checkpoints and MLX-converted repos
(`mlx-community/…`, 4- and 8-bit) as they are. Three things it does not handle, each fixed here:

1. **Unquantized experts as transformers saves them.** transformers keeps `experts.gate_up_proj` as
   `[experts, in, 2 × intermediate]` with gate and up interleaved on the last axis, and `experts.down_proj`
   as `[experts, in, out]`; mlx-lm's `sanitize()` expects the released (out-major) layout and leaves the
   names without `.weight`, so any bf16 or float32 checkpoint written by transformers fails to load.
   `GptOssForMlx.sanitize` transposes and splits them (and their biases) into mlx-lm's `gate_proj`,
   `up_proj` and `down_proj`.
2. **`rope_parameters`.** transformers 5 writes RoPE under `rope_parameters`; mlx-lm reads only
   `rope_theta` / `rope_scaling`, so YaRN would be silently dropped. `mlx_config_overrides` maps it back.
3. **YaRN `truncate: false`.** gpt-oss computes YaRN's correction range without rounding it; mlx-lm always
   rounds. `yarn_frequencies` computes the frequencies as transformers does, honouring `truncate`, and
   `load_mlx_model` puts them into every attention layer's RoPE.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gptoss_hub.errors import CheckpointError

if TYPE_CHECKING:
    import mlx.core as mx
    import mlx.nn

__all__ = ["load_mlx_model", "mlx_config_overrides", "split_transformers_experts", "yarn_frequencies"]


def mlx_config_overrides(config: dict[str, Any]) -> dict[str, Any]:
    """Config entries to add so mlx-lm reads RoPE right: `rope_theta` and `rope_scaling` taken from
    transformers 5's `rope_parameters` when the checkpoint has only that."""
    parameters = config.get("rope_parameters")
    if not isinstance(parameters, dict) or "rope_theta" in config:
        return {}
    scaling = {key: value for key, value in parameters.items() if key != "rope_theta"}
    overrides: dict[str, Any] = {"rope_theta": parameters.get("rope_theta", 150000)}
    if scaling.get("rope_type", "default") != "default":
        overrides["rope_scaling"] = scaling
    return overrides


def yarn_frequencies(dims: int, base: float, scaling: dict[str, Any]) -> mx.array:
    """YaRN's per-pair RoPE periods (what `mx.fast.rope` takes as `freqs`: the inverse of transformers'
    `inv_freq`) for `scaling` (a `rope_scaling` dict), rounding the correction range only when
    `truncate` is true (its default), as transformers' `_compute_yarn_parameters` does."""
    import mlx.core as mx

    factor = float(scaling["factor"])
    original = float(scaling.get("original_max_position_embeddings", 4096))
    beta_fast, beta_slow = float(scaling.get("beta_fast", 32)), float(scaling.get("beta_slow", 1))

    def correction_dim(rotations: float) -> float:
        return dims * math.log(original / (rotations * 2 * math.pi)) / (2 * math.log(base))

    low, high = correction_dim(beta_fast), correction_dim(beta_slow)
    if scaling.get("truncate", True):
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, dims - 1)
    if low == high:
        high += 0.001  # a ramp of width zero would divide by zero
    ramp = mx.clip((mx.arange(dims // 2, dtype=mx.float32) - low) / (high - low), 0, 1)
    extrapolation = 1.0 - ramp
    periods = base ** (mx.arange(0, dims, 2, dtype=mx.float32) / dims)
    interpolated = factor * periods
    # transformers: inv_freq = (1/interpolated)(1 - extrapolation) + (1/periods) extrapolation; its inverse:
    return (interpolated * periods) / (interpolated * extrapolation + periods * (1 - extrapolation))


def split_transformers_experts(weights: dict[str, Any], hidden_size: int, intermediate_size: int) -> dict[str, Any]:
    """`weights` with unquantized expert tensors (`experts.gate_up_proj`, `experts.down_proj` and their
    `_bias`) turned into mlx-lm's `experts.{gate,up,down}_proj.{weight,bias}`.

    The layout is read from `gate_up_proj`'s shape: `[E, hidden, 2I]` is transformers' (in-major: transposed
    here, with `down_proj` `[E, I, hidden]` alongside), `[E, 2I, hidden]` is already out-major. Gate and up
    are interleaved along the 2I axis in both. Other tensors pass through.
    """
    import mlx.core as mx

    converted: dict[str, Any] = {}
    for name, value in weights.items():
        if name.endswith("experts.gate_up_proj"):
            base = name.removesuffix("gate_up_proj")
            in_major = tuple(value.shape[-2:]) == (hidden_size, 2 * intermediate_size)
            if not in_major and tuple(value.shape[-2:]) != (2 * intermediate_size, hidden_size):
                raise CheckpointError(
                    f"{name} has shape {tuple(value.shape)}, which fits neither [experts, {hidden_size}, "
                    f"{2 * intermediate_size}] nor [experts, {2 * intermediate_size}, {hidden_size}] for this "
                    "config's hidden_size and intermediate_size; the checkpoint does not match its config.json."
                )
            gate_up = value.swapaxes(-1, -2) if in_major else value
            down = weights.get(f"{base}down_proj")
            if down is None:
                raise CheckpointError(f"{base}down_proj is missing beside {name}; the checkpoint is incomplete.")
            converted[f"{base}gate_proj.weight"] = mx.contiguous(gate_up[..., ::2, :])
            converted[f"{base}up_proj.weight"] = mx.contiguous(gate_up[..., 1::2, :])
            converted[f"{base}down_proj.weight"] = mx.contiguous(down.swapaxes(-1, -2)) if in_major else down
        elif name.endswith("experts.gate_up_proj_bias"):
            base = name.removesuffix("gate_up_proj_bias")
            converted[f"{base}gate_proj.bias"] = mx.contiguous(value[..., ::2])
            converted[f"{base}up_proj.bias"] = mx.contiguous(value[..., 1::2])
        elif name.endswith("experts.down_proj_bias"):
            converted[f"{name.removesuffix('down_proj_bias')}down_proj.bias"] = value
        elif not name.endswith("experts.down_proj"):  # down_proj went out beside its gate_up_proj
            converted[name] = value
    return converted


def _model_classes(config: dict[str, Any]) -> tuple[type, type]:
    """mlx-lm's gpt-oss model with the expert layout of transformers' checkpoints handled (see module doc)."""
    from mlx_lm.models import gpt_oss

    class GptOssForMlx(gpt_oss.Model):  # type: ignore[misc, name-defined]
        """mlx-lm's gpt-oss `Model` that also loads unquantized experts in transformers' layout."""

        def sanitize(self, weights: dict[str, Any]) -> dict[str, Any]:
            if any(name.endswith("experts.gate_up_proj") for name in weights):
                return split_transformers_experts(weights, self.args.hidden_size, self.args.intermediate_size)
            return super().sanitize(weights)  # type: ignore[no-any-return]

    return GptOssForMlx, gpt_oss.ModelArgs


def load_mlx_model(folder: Path) -> tuple[mlx.nn.Module, dict[str, Any]]:
    """Load the gpt-oss checkpoint in `folder` (config.json and `model*.safetensors`) into mlx-lm's model,
    with the three fixes above; return the model and its config as mlx-lm read it."""
    from mlx_lm.utils import load_model

    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{folder} has no readable config.json ({exc}); it is not a checkpoint folder.") from exc
    if config.get("model_type") != "gpt_oss":
        raise CheckpointError(
            f"{folder}/config.json says model_type {config.get('model_type')!r}; the mlx backend runs gpt-oss "
            "checkpoints (model_type 'gpt_oss')."
        )
    overrides = mlx_config_overrides(config)
    try:
        model, loaded_config = load_model(folder, model_config=overrides, get_model_classes=_model_classes)
    except CheckpointError:
        raise
    except (ValueError, FileNotFoundError, KeyError, RuntimeError) as exc:
        # mlx-lm raises ValueError for tensors that do not fit the model, MLX RuntimeError for unreadable files.
        raise CheckpointError(
            f"mlx-lm could not load the checkpoint in {folder}: {exc}. Check that its files are complete "
            "(download it again) and that it is a gpt-oss checkpoint."
        ) from exc
    scaling = loaded_config.get("rope_scaling") or {}
    if scaling.get("rope_type", scaling.get("type")) == "yarn":
        frequencies = yarn_frequencies(model.args.head_dim, float(loaded_config["rope_theta"]), scaling)
        for layer in model.layers:
            layer.self_attn.rope._freqs = frequencies
    return model, loaded_config
