"""Writing a gpt-oss Hugging Face checkpoint as one GGUF file that llama.cpp loads.

Why a focused writer rather than llama.cpp's `convert_hf_to_gguf.py`: that script ships with llama.cpp's
sources, not with any installable package (the `gguf` package on PyPI holds only the file format
library), so using it would mean vendoring it with its torch-based machinery. gpt-oss needs little
beyond what `gguf` already provides (the writer, the `gpt-oss` architecture's tensor-name map, the
MXFP4 quantizer, the BPE vocabulary reader), so this module adds only what is specific to gpt-oss:
splitting the interleaved gate/up expert projections, transposing the experts into GGML's
`[out, in]` order, repacking MXFP4 experts, and the hyperparameters llama.cpp reads. It streams one
tensor at a time, so memory stays at the size of the largest tensor.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gptoss_hub.convert import OUTTYPES, OutType, mxfp4
from gptoss_hub.convert.safetensors_files import CheckpointTensors
from gptoss_hub.errors import CheckpointError, InvalidRequestError, ModelNotFoundError

__all__ = ["convert_checkpoint"]

_ARCH = "gpt-oss"
# The harmony end of a reply; llama.cpp also ends on <|call|> (200012) through its gpt-oss vocabulary rules.
_RETURN = "<|return|>"


@dataclass
class _Planned:
    """One GGUF tensor: its name, shape (numpy order), storage type and a function producing its data."""

    name: str
    shape: tuple[int, ...]
    qtype: Any
    produce: Callable[[], np.ndarray]

    @property
    def nbytes(self) -> int:
        from gguf import GGML_QUANT_SIZES

        block, size = GGML_QUANT_SIZES[self.qtype]
        return int(np.prod(self.shape[:-1], dtype=np.int64)) * (self.shape[-1] // block) * size


def _bf16_bits(values: np.ndarray) -> np.ndarray:
    """float32 → bfloat16 bits (uint16), rounding to nearest even as torch does."""
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    rounded = bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))
    return (rounded >> np.uint32(16)).astype(np.uint16)


class _Plan:
    """Every output tensor of one conversion, in writing order."""

    def __init__(self, tensors: CheckpointTensors, config: dict[str, Any], outtype: OutType):
        import gguf

        self.tensors = tensors
        self.outtype = outtype
        self.layers = int(config["num_hidden_layers"])
        self.names = gguf.TensorNameMap(gguf.MODEL_ARCH.GPT_OSS, self.layers)
        self.gguf = gguf
        self.items: list[_Planned] = []

    def gguf_name(self, hf_name: str) -> str:
        name = self.names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise CheckpointError(f"{hf_name} has no GGUF name for gpt-oss: is this a gpt-oss checkpoint?")
        return name

    def add_float(
        self,
        gguf_name: str,
        load: Callable[[], np.ndarray],
        shape: tuple[int, ...],
        load_bf16: Callable[[], np.ndarray] | None = None,
    ) -> None:
        """A float tensor: f32 for vectors (norms, sinks), biases and the router, whose precision decides
        routing and costs little memory; the outtype's float for the other matrices. `load_bf16` gives
        the stored bfloat16 bits where the source holds them: copied as they are, straight from the mapped
        file, rather than widened to float32 and rounded back (which would take six bytes of anonymous
        memory per value: 7 GiB for gpt-oss's embedding)."""
        Q = self.gguf.GGMLQuantizationType
        keep_f32 = (
            self.outtype == "f32" or len(shape) == 1 or gguf_name.endswith(".bias") or ".ffn_gate_inp." in gguf_name
        )
        if keep_f32:
            self.items.append(_Planned(gguf_name, shape, Q.F32, lambda: np.ascontiguousarray(load(), np.float32)))
        elif load_bf16 is not None:
            self.items.append(_Planned(gguf_name, shape, Q.BF16, load_bf16))
        else:
            self.items.append(_Planned(gguf_name, shape, Q.BF16, lambda: _bf16_bits(load())))

    def add_experts(self, gguf_name: str, load_float: Callable[[], np.ndarray], load_mxfp4, shape) -> None:
        """An expert projection `[experts, out, in]`: MXFP4 when asked (repacked if the source is MXFP4)."""
        Q = self.gguf.GGMLQuantizationType
        if self.outtype == "mxfp4":
            produce = load_mxfp4 or (lambda: mxfp4.quantize_ggml(load_float()))
            self.items.append(_Planned(gguf_name, shape, Q.MXFP4, produce))
        else:
            self.add_float(gguf_name, load_float, shape)

    def build(self) -> None:
        t = self.tensors
        handled: set[str] = set()
        for hf_name in (n for n in t.names() if ".mlp.experts." not in n):
            handled.add(hf_name)
            # The attention sinks are a bare parameter in transformers; GGUF names them like weights.
            key = hf_name + ".weight" if hf_name.endswith(".sinks") else hf_name
            stored_bf16 = functools.partial(t.raw, hf_name) if t.dtype(hf_name) == "BF16" else None
            self.add_float(self.gguf_name(key), functools.partial(t.float32, hf_name), t.shape(hf_name), stored_bf16)
        for layer in range(self.layers):
            handled |= self._experts(layer)
        unknown = sorted(set(t.names()) - handled)
        if unknown:
            raise CheckpointError(f"Unexpected tensors for gpt-oss: {', '.join(unknown[:5])}.")

    def _experts(self, layer: int) -> set[str]:
        t = self.tensors
        prefix = f"model.layers.{layer}.mlp.experts."
        used: set[str] = set()
        for projection in ("gate_up_proj", "down_proj"):
            base = prefix + projection
            # `float_rows(pick)` / `ggml_rows(pick)`: the output rows `pick` selects as `[experts, out, in]`,
            # read, dequantized or repacked for those rows only.
            float_rows: Callable[[slice], np.ndarray]
            ggml_rows: Callable[[slice], np.ndarray] | None
            if base + "_blocks" in t:
                blocks, scales = base + "_blocks", base + "_scales"
                used |= {blocks, scales}
                experts, rows, groups, _ = t.shape(blocks)

                # MXFP4 sources are already `[experts, out, in]`.
                def float_rows(pick: slice, b: str = blocks, s: str = scales) -> np.ndarray:
                    return mxfp4.dequantize_hf(t.raw(b)[:, pick], t.raw(s)[:, pick])

                def ggml_rows(pick: slice, b: str = blocks, s: str = scales) -> np.ndarray:
                    return mxfp4.repack_hf_to_ggml(t.raw(b)[:, pick], t.raw(s)[:, pick])

                shape = (experts, rows, groups * 32)
            elif base in t:
                used.add(base)

                # transformers keeps experts as `[experts, in, out]` (x @ W); GGML wants `[out, in]`.
                def float_rows(pick: slice, b: str = base, s: str = "") -> np.ndarray:  # s: same signature
                    return np.ascontiguousarray(t.float32(b, (slice(None), slice(None), pick)).transpose(0, 2, 1))

                ggml_rows = None
                experts, columns, rows = t.shape(base)
                shape = (experts, rows, columns)
            else:
                raise CheckpointError(f"{base} is missing (neither bf16 nor MXFP4 *_blocks/*_scales).")
            bias = base + "_bias"
            used.add(bias)
            if projection == "down_proj":
                parts = [("down_proj", slice(None), shape)]
            else:
                # gate_up interleaves rows: gate is every even output row, up every odd one.
                half = (shape[0], shape[1] // 2, shape[2])
                parts = [("gate_proj", slice(0, None, 2), half), ("up_proj", slice(1, None, 2), half)]
            for part, pick, part_shape in parts:
                self.add_experts(
                    self.gguf_name(f"{prefix}{part}.weight"),
                    functools.partial(float_rows, pick),
                    None if ggml_rows is None else functools.partial(ggml_rows, pick),
                    part_shape,
                )
                self.add_float(
                    self.gguf_name(f"{prefix}{part}.bias"),
                    functools.partial(t.float32, bias, (slice(None), pick)),
                    part_shape[:2],
                )
        return used


def _add_hyperparameters(writer: Any, config: dict[str, Any], name: str, outtype: OutType) -> None:
    import gguf

    rope = config.get("rope_scaling") or config.get("rope_parameters") or {}
    rope_theta = config.get("rope_theta") or rope.get("rope_theta") or 150000.0
    head_dim = config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]
    writer.add_name(name)
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_expert_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(config["num_attention_heads"])
    writer.add_head_count_kv(config["num_key_value_heads"])
    writer.add_key_length(head_dim)
    writer.add_value_length(head_dim)
    writer.add_rope_freq_base(float(rope_theta))
    writer.add_layer_norm_rms_eps(float(config["rms_norm_eps"]))
    writer.add_expert_count(config["num_local_experts"])
    writer.add_expert_used_count(config["num_experts_per_tok"])
    writer.add_sliding_window(config["sliding_window"])
    rope_type = rope.get("rope_type", rope.get("type"))
    if rope_type != "yarn":
        raise CheckpointError(f"gpt-oss uses yarn rope scaling; this config has {rope_type!r}.")
    writer.add_rope_scaling_type(gguf.RopeScalingType.YARN)
    writer.add_rope_scaling_factor(float(rope["factor"]))
    writer.add_rope_scaling_orig_ctx_len(int(rope.get("original_max_position_embeddings", 4096)))
    file_type = {"f32": gguf.LlamaFileType.ALL_F32, "bf16": gguf.LlamaFileType.MOSTLY_BF16}.get(
        outtype, gguf.LlamaFileType.MOSTLY_MXFP4_MOE
    )
    writer.add_file_type(file_type)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)


def _add_tokenizer(writer: Any, folder: Path) -> None:
    """o200k_harmony as llama.cpp reads it: byte-level BPE tokens and merges, the `gpt-4o` pre-tokenizer,
    every harmony special token a control token, and `<|return|>` as the end of generation."""
    from gguf.vocab import BpeVocab, SpecialVocab

    try:
        vocab = BpeVocab(folder)
    except (FileNotFoundError, ValueError) as exc:
        raise CheckpointError(f"{folder} has no usable tokenizer.json for a BPE vocabulary: {exc}") from exc
    tokens, types = [], []
    for text, _score, token_type in vocab.all_tokens():
        tokens.append(text)
        types.append(token_type)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("gpt-4o")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    special = SpecialVocab(folder, load_merges=True, n_vocab=len(tokens))
    if not special.merges:
        raise CheckpointError(f"{folder}/tokenizer.json has no BPE merges.")
    # The checkpoints' eos is <|return|>; set it explicitly in case tokenizer_config.json omits it.
    lookup = {text: index for index, text in enumerate(tokens)}
    if _RETURN.encode() not in lookup:
        raise CheckpointError(f"{folder}/tokenizer.json has no {_RETURN} token; this is not o200k_harmony.")
    special.special_token_ids["eos"] = lookup[_RETURN.encode()]
    special.add_to_gguf(writer, quiet=True)
    writer.add_add_bos_token(False)


def _storage(item: _Planned) -> tuple[np.dtype, tuple[int, ...]]:
    """The numpy dtype of an item's data and the shape `GGUFWriter.add_tensor_info` expects for it
    (for quantized types held as uint8, the shape in bytes)."""
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

    if item.qtype == GGMLQuantizationType.BF16:
        return np.dtype(np.uint16), item.shape
    if item.qtype == GGMLQuantizationType.F32:
        return np.dtype(np.float32), item.shape
    block, size = GGML_QUANT_SIZES[item.qtype]
    return np.dtype(np.uint8), (*item.shape[:-1], item.shape[-1] // block * size)


def convert_checkpoint(
    source: str | Path,
    output: str | Path,
    outtype: OutType = "bf16",
    progress: Callable[[str, int, int], None] | None = None,
) -> Path:
    """Write the gpt-oss checkpoint in folder `source` as the GGUF file `output`; returns `output`.

    `outtype`: "f32" (every weight in float32), "bf16" (matrices in bfloat16, vectors and the router in
    float32) or "mxfp4" (expert projections in MXFP4, repacked exactly when the source holds MXFP4, else
    quantized; everything else as "bf16"). `progress(tensor_name, done, total)` is called after each tensor.
    """
    import gguf

    if outtype not in OUTTYPES:
        raise InvalidRequestError(f"outtype must be one of {', '.join(OUTTYPES)}, got {outtype!r}.")
    folder, output = Path(source), Path(output)
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise ModelNotFoundError(f"{folder} has no config.json; pass a Hugging Face gpt-oss checkpoint folder.")
    config = json.loads(config_file.read_text())
    if config.get("model_type") != "gpt_oss":
        raise CheckpointError(f"{folder} holds a {config.get('model_type')!r} model, not gpt_oss.")
    plan = _Plan(CheckpointTensors(folder), config, outtype)
    plan.build()
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    writer = gguf.GGUFWriter(partial, _ARCH)
    try:
        _add_hyperparameters(writer, config, folder.name, outtype)
        _add_tokenizer(writer, folder)
        for item in plan.items:
            storage, shape = _storage(item)
            writer.add_tensor_info(item.name, shape, storage, item.nbytes, raw_dtype=item.qtype)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        for done, item in enumerate(plan.items, start=1):
            data = item.produce()
            if data.nbytes != item.nbytes:
                raise CheckpointError(f"{item.name}: produced {data.nbytes} bytes, expected {item.nbytes}.")
            writer.write_tensor_data(data)
            if progress:
                progress(item.name, done, len(plan.items))
    except BaseException:
        writer.close()
        partial.unlink(missing_ok=True)  # nothing half-written is left behind
        raise
    writer.close()
    partial.replace(output)  # the output appears whole or not at all
    return output
