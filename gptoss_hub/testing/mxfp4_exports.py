"""MXFP4 exports of the tiny reference checkpoints, in the real gpt-oss checkpoints' layout, and their twins.

- `mxfp4_checkpoint_path(name)`: the checkpoint with each expert projection stored as the real
  `openai/gpt-oss-*` safetensors store it, `<projection>_blocks` (uint8 `[experts, out, in / 32, 16]`) and
  `<projection>_scales` (uint8 `[experts, out, in / 32]`), beside the unchanged float `<projection>_bias`,
  and `config.json` carrying the real models' `quantization_config`. Transformers reads it through its
  MXFP4 path (dequantizing on a CPU).
- `dequantized_twin_path(name)`: the same checkpoint in the ordinary layout, its expert weights replaced by
  the MXFP4 values as `gptoss_hub.convert.mxfp4` dequantizes them, in the checkpoint's dtype. Both folders
  hold the same model, so they must give the same tokens.

Each export is cached beside the checkpoint as `<name>-<version>-mxfp4` and `<name>-<version>-mxfp4-twin`
(`gptoss_hub.testing.exports`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gptoss_hub.released import MXFP4_QUANTIZATION_CONFIG
from gptoss_hub.testing.exports import copy_side_files, derived_checkpoint, read_tensors, save_tensors

__all__ = ["EXPERT_PROJECTIONS", "MXFP4_QUANTIZATION_CONFIG", "dequantized_twin_path", "mxfp4_checkpoint_path"]

#: The expert weights stored in MXFP4; their `_bias` tensors stay in float.
EXPERT_PROJECTIONS = ("gate_up_proj", "down_proj")

_MXFP4_README = """# {name} ({version}), MXFP4 experts

`{name}` with its expert projections in MXFP4, laid out as in the real gpt-oss checkpoints:
`*_blocks` (uint8 `[experts, out, in / 32, 16]`) and `*_scales` (uint8 `[experts, out, in / 32]`, E8M0),
biases and every other weight unchanged ({dtype}), and the real models' `quantization_config`.
Made by `gptoss_hub.testing.mxfp4_exports`; `{name}-{version}-mxfp4-twin` holds the same values dequantized.
"""
_TWIN_README = """# {name} ({version}), MXFP4 round trip

`{name}` in the ordinary layout with its expert projections replaced by their MXFP4 values
(quantized, then dequantized by `gptoss_hub.convert.mxfp4`), stored as {dtype}. It is the same model as
`{name}-{version}-mxfp4`. Made by `gptoss_hub.testing.mxfp4_exports`.
"""


def mxfp4_checkpoint_path(name: str = "tiny-harmony", *, build: bool = True) -> Path:
    """The folder of reference checkpoint `name` with MXFP4 experts (the real layout), made first if missing.

    With `build=False` the path is returned whether or not it exists.
    """
    return derived_checkpoint(name, "mxfp4", _write_mxfp4, build=build)


def dequantized_twin_path(name: str = "tiny-harmony", *, build: bool = True) -> Path:
    """The folder of reference checkpoint `name` with its experts round-tripped through MXFP4, made first if missing.

    With `build=False` the path is returned whether or not it exists.
    """
    return derived_checkpoint(name, "mxfp4-twin", _write_twin, build=build)


def _quantize(weight: Any) -> tuple[Any, Any]:
    """MXFP4 `(blocks, scales)` of a transformers expert weight `[experts, in, out]`.

    Transformers computes `x @ W` with `W` as `[experts, in, out]`; the real checkpoints store each
    projection the other way round, `[experts, out, in]`, so that its 32-value groups run along the input.
    """
    import torch

    from gptoss_hub.convert.mxfp4 import quantize_hf

    inputs = weight.shape[1]
    if inputs % 32:
        raise ValueError(
            f"MXFP4 needs a multiple of 32 input values per expert projection, got {inputs}: "
            "this shape cannot be exported."
        )
    rows = weight.detach().to(torch.float32).transpose(1, 2).contiguous().numpy()
    blocks, scales = quantize_hf(rows)
    return torch.from_numpy(blocks), torch.from_numpy(scales)


def _expert_names(tensors: dict[str, Any]) -> list[str]:
    return sorted(n for n in tensors if n.rsplit(".", 1)[-1] in EXPERT_PROJECTIONS and ".mlp.experts." in n)


def _readme(template: str, source: Path, tensors: dict[str, Any]) -> str:
    from gptoss_hub.testing.checkpoints import CHECKPOINT_VERSION

    name = source.name.removesuffix(f"-{CHECKPOINT_VERSION}")
    dtype = str(next(iter(tensors.values())).dtype).removeprefix("torch.")
    return template.format(name=name, version=CHECKPOINT_VERSION, dtype=dtype)


def _write_mxfp4(source: Path, folder: Path) -> None:
    tensors = read_tensors(source)
    readme = _readme(_MXFP4_README, source, tensors)
    for name in _expert_names(tensors):
        tensors[f"{name}_blocks"], tensors[f"{name}_scales"] = _quantize(tensors.pop(name))
    copy_side_files(source, folder)
    config = json.loads((folder / "config.json").read_text())
    config["quantization_config"] = MXFP4_QUANTIZATION_CONFIG
    (folder / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    save_tensors(tensors, folder)
    (folder / "README.md").write_text(readme)


def _write_twin(source: Path, folder: Path) -> None:
    import torch

    from gptoss_hub.convert.mxfp4 import dequantize_hf

    tensors = read_tensors(source)
    for name in _expert_names(tensors):
        weight = tensors[name]
        values = torch.from_numpy(dequantize_hf(*(t.numpy() for t in _quantize(weight))))
        # Every MXFP4 value (two significant bits times a power of two) is exact in float32 and bfloat16.
        tensors[name] = values.transpose(1, 2).to(weight.dtype)
    copy_side_files(source, folder)
    save_tensors(tensors, folder)
    (folder / "README.md").write_text(_readme(_TWIN_README, source, tensors))
