"""MXFP4 in the two layouts gpt-oss meets: the Hugging Face checkpoints' and GGML's.

Both store 32 E2M1 values (4 bits each) with one shared E8M0 exponent byte, and the value of a code is
`E2M1[code] * 2**(exponent - 127)`. They differ only in where the bytes sit:

- Hugging Face (`*_blocks` uint8 `[..., groups, 16]` and `*_scales` uint8 `[..., groups]`): byte `b` of
  a group holds value `2b` in its low nibble and value `2b + 1` in its high nibble.
- GGML (`GGMLQuantizationType.MXFP4`, 17 bytes per group): the exponent byte, then 16 bytes where byte
  `j` holds value `j` in its low nibble and value `j + 16` in its high nibble.

Repacking is a permutation of nibbles, so it is exact.
"""

from __future__ import annotations

import numpy as np

__all__ = ["E2M1_VALUES", "dequantize_hf", "quantize_ggml", "quantize_hf", "repack_ggml_to_hf", "repack_hf_to_ggml"]

#: The 16 E2M1 codes' values.
E2M1_VALUES = np.array(
    [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0], dtype=np.float32
)


def _codes_hf(blocks: np.ndarray) -> np.ndarray:
    """Per-value codes `[..., groups, 32]` from Hugging Face blocks `[..., groups, 16]`."""
    codes = np.empty((*blocks.shape[:-1], 32), dtype=np.uint8)
    codes[..., 0::2] = blocks & 0x0F
    codes[..., 1::2] = blocks >> 4
    return codes


def dequantize_hf(blocks: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """Float32 values `[..., groups * 32]` of Hugging Face MXFP4 `blocks` and `scales`."""
    blocks, scales = np.asarray(blocks, dtype=np.uint8), np.asarray(scales, dtype=np.uint8)
    if blocks.shape[:-1] != scales.shape or blocks.shape[-1] != 16:
        raise ValueError(f"MXFP4 blocks {blocks.shape} and scales {scales.shape} do not match.")
    values = E2M1_VALUES[_codes_hf(blocks)]
    values *= np.ldexp(np.float32(1.0), scales.astype(np.int32) - 127)[..., None]
    return values.reshape(*blocks.shape[:-2], -1)


def repack_hf_to_ggml(blocks: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """GGML MXFP4 bytes `[..., groups * 17]` holding exactly the values of Hugging Face `blocks`/`scales`."""
    blocks, scales = np.asarray(blocks, dtype=np.uint8), np.asarray(scales, dtype=np.uint8)
    if blocks.shape[:-1] != scales.shape or blocks.shape[-1] != 16:
        raise ValueError(f"MXFP4 blocks {blocks.shape} and scales {scales.shape} do not match.")
    codes = _codes_hf(blocks)
    packed = np.empty((*blocks.shape[:-1], 17), dtype=np.uint8)
    packed[..., 0] = scales
    packed[..., 1:] = codes[..., :16] | (codes[..., 16:] << 4)
    return packed.reshape(*blocks.shape[:-2], -1)


def quantize_ggml(values: np.ndarray) -> np.ndarray:
    """GGML MXFP4 bytes for float `values` whose last dimension is a multiple of 32 (gguf's quantizer)."""
    from gguf import GGMLQuantizationType
    from gguf.quants import quantize

    if values.shape[-1] % 32:
        raise ValueError(f"MXFP4 needs rows that are a multiple of 32 values, got {values.shape[-1]}.")
    return quantize(np.ascontiguousarray(values, dtype=np.float32), GGMLQuantizationType.MXFP4)


def repack_ggml_to_hf(packed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hugging Face `(blocks, scales)` holding exactly the values of GGML MXFP4 bytes `[..., groups * 17]`."""
    packed = np.asarray(packed, dtype=np.uint8)
    if packed.shape[-1] % 17:
        raise ValueError(f"GGML MXFP4 rows are multiples of 17 bytes, got {packed.shape[-1]}.")
    packed = packed.reshape(*packed.shape[:-1], -1, 17)
    codes = np.concatenate([packed[..., 1:] & 0x0F, packed[..., 1:] >> 4], axis=-1)
    blocks = codes[..., 0::2] | (codes[..., 1::2] << 4)
    return np.ascontiguousarray(blocks), np.ascontiguousarray(packed[..., 0])


def quantize_hf(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hugging Face MXFP4 `(blocks, scales)` for float `values` (last dimension a multiple of 32)."""
    return repack_ggml_to_hf(quantize_ggml(values))
