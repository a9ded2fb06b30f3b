"""The memory models, on the released shapes (their figures are those of the model card and the released files)."""

import pytest

from gptoss_hub.memory import GIB, llamacpp_memory, transformers_memory, vllm_memory
from gptoss_hub.released import released_config
from gptoss_hub.shape import ShapeReading, shape_from_config

SHAPE_20B = shape_from_config(released_config("20b"))
SHAPE_120B = shape_from_config(released_config("120b"))


def _reading(shape, guessed=False):
    return ShapeReading(shape, "test shape", guessed=guessed)


def test_parameter_counts_match_the_model_card():
    # 21B parameters (20b) and 117B (120b), as the model card says.
    assert round(SHAPE_20B.parameters / 1e9, 1) == 20.9
    assert round(SHAPE_120B.parameters / 1e9, 1) == 116.8


def test_weights_by_format():
    # The released 20b is 12.8 GiB of safetensors; in bf16 it takes about 39 GiB.
    assert round(SHAPE_20B.weights_bytes("mxfp4") / GIB, 1) == 12.8
    assert round(SHAPE_20B.weights_bytes("bf16") / GIB) == 39
    assert SHAPE_20B.weights_bytes("mxfp4") < 16 * GIB < SHAPE_20B.weights_bytes("bf16")
    assert SHAPE_120B.weights_bytes("mxfp4") < 80 * 10**9 < SHAPE_120B.weights_bytes("bf16")
    assert SHAPE_20B.weights_bytes("fp32") == 2 * SHAPE_20B.weights_bytes("bf16")
    # GGUF keeps vectors, biases and the router in f32: slightly bigger than the safetensors.
    assert SHAPE_20B.weights_bytes("mxfp4") < SHAPE_20B.weights_bytes("gguf-mxfp4") < 13 * GIB


def test_kv_cache_grows_only_in_full_attention_layers():
    # 12 full-attention layers x 8 kv heads x 64 dims x (k, v) x 2 bytes per token, plus 12 sliding layers capped at 128.
    per_token = 12 * 8 * 64 * 2 * 2
    sliding = 12 * 8 * 64 * 2 * 2 * 128
    assert SHAPE_20B.kv_cache_bytes(1000) == per_token * 1000 + sliding
    assert SHAPE_20B.kv_cache_bytes(100) == per_token * 100 + 12 * 8 * 64 * 2 * 2 * 100
    # A runtime keeping sliding layers at full size pays for every layer.
    assert SHAPE_20B.kv_cache_bytes(1000, sliding_tokens=1000) == 2 * per_token * 1000


def _transformers(shape, weights, context=8192, available=None):
    return transformers_memory(
        _reading(shape), context, weights=weights, runtime="in " + weights, available=available, available_what="x"
    )


def test_the_memory_rules_of_the_dispatch_table():
    a100_40gb, h100_80gb = 40 * 10**9, 80 * 10**9
    assert _transformers(SHAPE_20B, "bf16").needed_bytes > a100_40gb  # 20b in bf16 does not fit an A100 40 GB
    assert _transformers(SHAPE_20B, "mxfp4").needed_bytes < 16 * 10**9 * 1.1  # "about 16 GB" in MXFP4
    assert _transformers(SHAPE_120B, "mxfp4").needed_bytes < h100_80gb  # 120b in MXFP4 fits one 80 GB GPU
    assert _transformers(SHAPE_120B, "mxfp4", 131_072).needed_bytes > _transformers(SHAPE_120B, "mxfp4").needed_bytes


def test_llamacpp_on_the_cpu_counts_the_mapped_file_and_the_repacked_experts():
    on_cpu = llamacpp_memory(_reading(SHAPE_20B), 8192, on_gpu=False, available=24 * GIB, available_what="x")
    parts = dict(on_cpu.parts)
    assert parts["mapped file"] == SHAPE_20B.weights_bytes("gguf-mxfp4")
    assert parts["repacked experts"] == SHAPE_20B.expert_bytes("gguf-mxfp4") == on_cpu.reclaimable_bytes
    # The hub keeps sliding-window layers at full size, so every layer holds 8192 tokens of f16 keys and values.
    assert parts["kv cache"] == 24 * 8192 * 8 * 64 * 2 * 2
    assert on_cpu.resident_bytes == sum(parts.values())
    # What must fit leaves out the reclaimable pages and keeps a 10% margin for the rest of the machine.
    assert on_cpu.needed_bytes == int((on_cpu.resident_bytes - on_cpu.reclaimable_bytes) * 1.1)
    assert on_cpu.fits and on_cpu.fit_reason("m") is None
    offloaded = llamacpp_memory(_reading(SHAPE_20B), 8192, on_gpu=True, available=16 * GIB, available_what="x")
    assert offloaded.reclaimable_bytes == 0 and "repacked experts" not in dict(offloaded.parts)
    assert offloaded.resident_bytes < on_cpu.resident_bytes


def test_vllm_reserves_its_share_of_the_gpus_but_checks_what_the_model_needs():
    h100 = 80 * GIB
    estimate = vllm_memory(
        _reading(SHAPE_20B), 8192, on_gpu=True, available=int(0.9 * h100), available_what="x", gpu_total=h100
    )
    assert estimate.resident_bytes == int(0.9 * h100) and estimate.needed_bytes < 16 * GIB and estimate.fits
    on_cpu = vllm_memory(_reading(SHAPE_20B), 8192, on_gpu=False, available=32 * GIB, available_what="x")
    assert dict(on_cpu.parts)["kv cache"] == 4 * GIB and not on_cpu.fits


def test_a_guess_says_so_in_the_rejection():
    tight = transformers_memory(
        _reading(SHAPE_20B, guessed=True),
        8192,
        weights="bf16",
        runtime="in bf16",
        available=16 * GIB,
        available_what="this machine has {gib} GiB of RAM",
    )
    assert tight.fit_reason("my-model") == (
        "my-model needs about 43 GiB in bf16 with a 8192-token context (its size is test shape); "
        "this machine has 16 GiB of RAM."
    )


def test_no_shape_no_estimate():
    with pytest.raises(ValueError, match="no shape"):
        llamacpp_memory(ShapeReading(None, "nothing"), 8192, on_gpu=False, available=None, available_what="x")
