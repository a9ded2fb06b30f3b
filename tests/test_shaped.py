"""Random-weight checkpoints with the released shapes: the released names, dtypes and MXFP4 layout, sharded
safetensors with their index, deterministic values, and every reader (our GGUF converter, transformers) takes them.

The unmarked tests use a shrunk config (the real structure and vocabulary, small widths); the slow one writes
two layers at the real 20b width.
"""

from __future__ import annotations

import itertools
import json
import re
import struct
from pathlib import Path

import numpy as np
import pytest

from gptoss_hub.convert import mxfp4
from gptoss_hub.convert.safetensors_files import CheckpointTensors
from gptoss_hub.errors import GptOssHubError
from gptoss_hub.released import released_config
from gptoss_hub.testing import __main__ as testing_cli
from gptoss_hub.testing import shaped
from gptoss_hub.testing.shaped import (
    INDEX_FILE,
    RELEASED_GENERATION_CONFIG,
    SCALE_BYTES,
    shaped_tensors,
    write_shaped_checkpoint,
    write_shaped_from_config,
)

#: The released 20b structure (two layers, both attention kinds, yarn rope, the full vocabulary) at small
#: widths; intermediate differs from hidden and the attention width from both, so a swapped axis shows.
SMALL = released_config("20b", layers=2) | {
    "hidden_size": 64,
    "intermediate_size": 96,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "num_local_experts": 4,
    "num_experts_per_tok": 2,
    "experts_per_token": 2,
}
#: Small enough that the small checkpoint spans several shards.
SMALL_SHARD = 8 * 2**20
SAFETENSORS_DTYPES = {"BF16": 2, "U8": 1}


def _expected_layout(config):
    """{name: (dtype, shape)} as openai/gpt-oss-20b stores its tensors, written out from the released files."""
    hidden, inter, vocab = config["hidden_size"], config["intermediate_size"], config["vocab_size"]
    experts, head_dim = config["num_local_experts"], config["head_dim"]
    q, kv = config["num_attention_heads"] * head_dim, config["num_key_value_heads"] * head_dim
    layout = {
        "model.embed_tokens.weight": ("BF16", [vocab, hidden]),
        "lm_head.weight": ("BF16", [vocab, hidden]),
        "model.norm.weight": ("BF16", [hidden]),
    }
    for i in range(config["num_hidden_layers"]):
        p = f"model.layers.{i}."
        layout |= {
            p + "input_layernorm.weight": ("BF16", [hidden]),
            p + "post_attention_layernorm.weight": ("BF16", [hidden]),
            p + "self_attn.q_proj.weight": ("BF16", [q, hidden]),
            p + "self_attn.q_proj.bias": ("BF16", [q]),
            p + "self_attn.k_proj.weight": ("BF16", [kv, hidden]),
            p + "self_attn.k_proj.bias": ("BF16", [kv]),
            p + "self_attn.v_proj.weight": ("BF16", [kv, hidden]),
            p + "self_attn.v_proj.bias": ("BF16", [kv]),
            p + "self_attn.o_proj.weight": ("BF16", [hidden, q]),
            p + "self_attn.o_proj.bias": ("BF16", [hidden]),
            p + "self_attn.sinks": ("BF16", [config["num_attention_heads"]]),
            p + "mlp.router.weight": ("BF16", [experts, hidden]),
            p + "mlp.router.bias": ("BF16", [experts]),
            p + "mlp.experts.gate_up_proj_blocks": ("U8", [experts, 2 * inter, hidden // 32, 16]),
            p + "mlp.experts.gate_up_proj_scales": ("U8", [experts, 2 * inter, hidden // 32]),
            p + "mlp.experts.gate_up_proj_bias": ("BF16", [experts, 2 * inter]),
            p + "mlp.experts.down_proj_blocks": ("U8", [experts, hidden, inter // 32, 16]),
            p + "mlp.experts.down_proj_scales": ("U8", [experts, hidden, inter // 32]),
            p + "mlp.experts.down_proj_bias": ("BF16", [experts, hidden]),
        }
    return layout


def _header(path: Path) -> tuple[int, dict]:
    """(bytes before the data, the JSON header) of a safetensors file."""
    with open(path, "rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        return 8 + length, json.loads(handle.read(length))


def _shards(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.safetensors"))


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """The small shaped checkpoint (seed 0), written once; the progress lines it printed."""
    lines: list[str] = []
    folder = write_shaped_from_config(
        SMALL, tmp_path_factory.mktemp("shaped") / "small", shard_bytes=SMALL_SHARD, progress=lines.append
    )
    return folder, lines


def test_the_released_20b_layout_and_size():
    # Planned only, nothing written: the released tensor list, and the released index's total_size.
    config = released_config("20b")
    tensors = shaped_tensors(config)
    assert {t.name: (t.dtype, list(t.shape)) for t in tensors} == _expected_layout(config)
    assert len(tensors) == 3 + 19 * 24
    assert sum(t.nbytes for t in tensors) == 13_761_264_768  # openai/gpt-oss-20b's model.safetensors.index.json
    experts = {t.name: t.shape for t in shaped_tensors(released_config("120b", layers=1)) if "experts" in t.name}
    assert experts["model.layers.0.mlp.experts.down_proj_blocks"] == (128, 2880, 90, 16)


def test_names_shapes_and_dtypes_are_the_released_ones(small):
    folder, _ = small
    found = {}
    for path in _shards(folder):
        _, header = _header(path)
        assert header.pop("__metadata__") == {"format": "pt"}
        found |= {name: (entry["dtype"], entry["shape"]) for name, entry in header.items()}
    assert found == _expected_layout(SMALL)


def test_shards_and_index(small):
    folder, lines = small
    shards = _shards(folder)
    assert len(shards) >= 3
    # Numbered from zero, "of" the last number, as openai/gpt-oss-20b names its three shards.
    assert [p.name for p in shards] == [
        f"model-{i:05d}-of-{len(shards) - 1:05d}.safetensors" for i in range(len(shards))
    ]
    index = json.loads((folder / INDEX_FILE).read_text())
    assert set(index) == {"metadata", "weight_map"}
    total = 0
    for path in shards:
        start, header = _header(path)
        header.pop("__metadata__")
        assert {n for n, f in index["weight_map"].items() if f == path.name} == set(header)
        sizes = [int(np.prod(e["shape"])) * SAFETENSORS_DTYPES[e["dtype"]] for e in header.values()]
        # The tensors' data is contiguous and the file ends where the last tensor does.
        offsets = sorted(tuple(e["data_offsets"]) for e in header.values())
        assert offsets[0][0] == 0 and all(a[1] == b[0] for a, b in itertools.pairwise(offsets))
        assert path.stat().st_size == start + sum(sizes) == start + offsets[-1][1]
        assert sum(sizes) <= SMALL_SHARD or len(header) == 1
        total += sum(sizes)
    assert index["metadata"]["total_size"] == total
    assert set(index["weight_map"]) == set(_expected_layout(SMALL))
    assert len(lines) == len(shards) + 1 and lines[-1].startswith(f"wrote {folder}")
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no staging left behind


def test_side_files(small):
    folder, _ = small
    config = json.loads((folder / "config.json").read_text())
    assert config == SMALL
    assert config["quantization_config"]["quant_method"] == "mxfp4"
    assert json.loads((folder / "generation_config.json").read_text()) == RELEASED_GENERATION_CONFIG
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        assert (folder / name).is_file(), name
    assert "random" in (folder / "README.md").read_text().lower()


def test_values_keep_activations_sane(small):
    folder, _ = small
    t = CheckpointTensors(folder)
    assert sorted(t.names()) == sorted(_expected_layout(SMALL))
    embed = t.float32("model.embed_tokens.weight")
    assert abs(float(embed.std()) - 0.02) < 0.001 and abs(float(embed.mean())) < 0.001
    assert np.all(t.float32("model.layers.1.input_layernorm.weight") == 1)
    assert np.all(t.float32("model.norm.weight") == 1)
    assert np.all(t.float32("model.layers.0.self_attn.sinks") == 0)
    assert 0 < float(np.abs(t.float32("model.layers.0.self_attn.q_proj.bias")).max()) < 0.1
    scales = t.raw("model.layers.1.mlp.experts.down_proj_scales")
    assert set(np.unique(scales).tolist()) == set(SCALE_BYTES)
    blocks = t.raw("model.layers.1.mlp.experts.gate_up_proj_blocks")
    assert len(np.unique(blocks)) == 256  # uniform random codes
    values = mxfp4.dequantize_hf(blocks, t.raw("model.layers.1.mlp.experts.gate_up_proj_scales"))
    assert np.isfinite(values).all() and 0.015 < float(values.std()) < 0.035


def test_deterministic_by_seed_and_by_tensor_name(small, tmp_path):
    folder, _ = small
    again = write_shaped_from_config(SMALL, tmp_path / "again", shard_bytes=SMALL_SHARD, progress=None)
    for a, b in zip(_shards(folder), _shards(again), strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name
    # One shard this time, one layer, seed 1: each tensor's values depend on the seed, its name and shape only.
    other = write_shaped_from_config(
        SMALL | {"num_hidden_layers": 1, "layer_types": ["sliding_attention"]},
        tmp_path / "other",
        seed=1,
        progress=None,
    )
    seed1 = write_shaped_from_config(SMALL, tmp_path / "seed1", seed=1, progress=None)
    reference, one_layer, differs = CheckpointTensors(folder), CheckpointTensors(other), CheckpointTensors(seed1)
    for name in one_layer.names():
        assert np.array_equal(one_layer.raw(name), differs.raw(name)), name
        if name.endswith(("norm.weight", "sinks")):
            assert np.array_equal(one_layer.raw(name), reference.raw(name)), name
        else:
            assert not np.array_equal(one_layer.raw(name), reference.raw(name)), name


def test_existing_folders_are_kept_unless_forced(small, tmp_path):
    target = tmp_path / "exists"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    with pytest.raises(GptOssHubError, match="already exists"):
        write_shaped_from_config(SMALL, target, progress=None)
    assert [p.name for p in target.iterdir()] == ["keep.txt"]
    write_shaped_from_config(SMALL, target, force=True, progress=None)
    assert not (target / "keep.txt").exists() and (target / INDEX_FILE).is_file()


def test_a_failed_write_leaves_nothing(tmp_path):
    def fail(_line):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_shaped_from_config(SMALL, tmp_path / "never", progress=fail)
    assert list(tmp_path.iterdir()) == []


def test_bad_shapes_are_refused(tmp_path):
    with pytest.raises(ValueError, match="divisible by 32"):
        shaped_tensors(SMALL | {"intermediate_size": 80})
    with pytest.raises(ValueError, match="20b and 120b"):
        write_shaped_checkpoint("7b", tmp_path / "x")
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def small_gguf(small, tmp_path_factory):
    """The small checkpoint converted by `gptoss_hub.convert` to an MXFP4 GGUF; (path, GGUF tensor names)."""
    pytest.importorskip("gguf", reason="the llamacpp extra (gguf) is installed by .ci/run")
    from gptoss_hub.convert import convert_checkpoint

    names: list[str] = []
    output = convert_checkpoint(
        small[0], tmp_path_factory.mktemp("gguf") / "small.gguf", "mxfp4", progress=lambda n, *_: names.append(n)
    )
    return output, names


PROMPT = [200006, 1428, 200008, 12194, 200007, 200006, 173781]


def _transformers_logits(folder, dtype):
    import torch
    from transformers import GptOssForCausalLM, Mxfp4Config

    model = GptOssForCausalLM.from_pretrained(folder, quantization_config=Mxfp4Config(dequantize=True), dtype=dtype)
    with torch.no_grad():
        return model(torch.tensor([PROMPT])).logits[0].float().numpy()


def test_converts_to_an_mxfp4_gguf(small, small_gguf):
    # (gguf's GGUFReader takes half a minute over the 201,088-token vocabulary; tests/test_convert.py reads
    # converted files back under the slow mark. Here the tensor list and llama.cpp, when installed, check it.)
    output, names = small_gguf
    experts = {
        f"blk.{i}.ffn_{p}_exps.{k}" for i in range(2) for p in ("gate", "up", "down") for k in ("weight", "bias")
    }
    assert experts <= set(names) and len(names) == len(set(names)) == 3 + 2 * 19  # gate_up splits in two
    source = CheckpointTensors(small[0])
    # MXFP4 experts are repacked at 17 bytes per 32 values (the float outtypes would take 64 or 128).
    mxfp4_bytes = sum(source.raw(n).size for n in source.names() if n.endswith(("_blocks", "_scales")))
    other_bytes = sum(4 * source.raw(n).size for n in source.names() if not n.endswith(("_blocks", "_scales")))
    assert mxfp4_bytes < output.stat().st_size < mxfp4_bytes + other_bytes + 64 * 2**20


def test_stored_bf16_matrices_are_copied_not_widened(small):
    """bf16 in, bf16 out: the converter hands the mapped bits through (no float32 copy of the embedding, which
    would take 7 GiB of anonymous memory at the real size), and they equal what widening and rounding give."""
    from gptoss_hub.convert.writer import _bf16_bits, _Plan

    tensors = CheckpointTensors(small[0])
    plan = _Plan(tensors, json.loads((small[0] / "config.json").read_text()), "mxfp4")
    plan.build()
    embedding = next(item for item in plan.items if item.name == "token_embd.weight").produce()
    assert isinstance(embedding, np.memmap)
    assert np.array_equal(embedding, _bf16_bits(tensors.float32("model.embed_tokens.weight")))


def test_llama_cpp_runs_the_gguf_like_transformers(small, small_gguf):
    llama_cpp = pytest.importorskip("llama_cpp", reason="the llamacpp extra is installed by .ci/run")
    pytest.importorskip("torch")

    model = llama_cpp.Llama(str(small_gguf[0]), n_ctx=64, n_threads=1, logits_all=True, verbose=False)
    try:
        model.eval(PROMPT)
        ggml = np.array(model.scores[: len(PROMPT)])
    finally:
        model.close()
    reference = _transformers_logits(small[0], "float32")
    assert np.isfinite(ggml).all()
    # Same weights, different arithmetic (llama.cpp's MXFP4 and bf16 kernels against float32).
    assert np.abs(ggml - reference).max() < 0.02 * np.abs(reference).max()
    assert np.corrcoef(ggml.ravel(), reference.ravel())[0, 1] > 0.999


def test_transformers_loads_it_with_finite_logits(small):
    torch = pytest.importorskip("torch")
    from transformers import GptOssForCausalLM, Mxfp4Config

    folder, _ = small
    # As the transformers CPU backend loads MXFP4 checkpoints: dequantized, asked for explicitly.
    model, info = GptOssForCausalLM.from_pretrained(
        folder, quantization_config=Mxfp4Config(dequantize=True), output_loading_info=True
    )
    assert not any(info.values()), info  # no missing, unexpected or mismatched tensors
    assert model.dtype == torch.bfloat16
    # transformers holds each projection as `[experts, in, out]`: our `[experts, out, in]` values transposed.
    source = CheckpointTensors(folder)
    for projection in ("gate_up_proj", "down_proj"):
        name = f"model.layers.0.mlp.experts.{projection}"
        ours = mxfp4.dequantize_hf(source.raw(name + "_blocks"), source.raw(name + "_scales"))
        loaded = getattr(model.model.layers[0].mlp.experts, projection).detach().float().numpy()
        assert np.array_equal(loaded, ours.transpose(0, 2, 1)), projection
    with torch.no_grad():
        logits = model(torch.tensor([[200006, 1428, 200008, 12194, 200007]])).logits
    assert logits.shape == (1, 5, SMALL["vocab_size"])
    assert torch.isfinite(logits).all() and float(logits.float().std()) > 0


def test_cli(tmp_path, capsys, monkeypatch):
    calls = []

    def small_instead(size, out, *, layers, seed, force):
        calls.append((size, layers, seed, force))
        return write_shaped_from_config(SMALL, out, seed=seed, force=force, progress=None)

    monkeypatch.setattr(shaped, "write_shaped_checkpoint", small_instead)
    out = tmp_path / "cli"
    assert testing_cli.main(["shaped", "20b", str(out), "--layers", "2", "--seed", "3"]) == 0
    assert calls == [("20b", 2, 3, False)]
    printed = capsys.readouterr().out
    total = sum(p.stat().st_size for p in out.iterdir())
    assert re.fullmatch(rf"{re.escape(str(out))} \(\d+\.\d\d GiB, {total:,} bytes\)\n", printed)
    assert testing_cli.main(["shaped", "120b", str(out)]) == 1  # exists
    assert "already exists" in capsys.readouterr().err
    monkeypatch.undo()
    assert testing_cli.main(["shaped", "20b", str(tmp_path / "none"), "--layers", "0"]) == 1
    assert "layers must be at least 1" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()


@pytest.mark.slow
def test_real_width_two_layers(tmp_path):
    """Two layers of gpt-oss-20b at the real width (3.1 GiB): byte-exact files, and transformers runs it."""
    torch = pytest.importorskip("torch")
    from transformers import GptOssForCausalLM, Mxfp4Config

    folder = write_shaped_checkpoint("20b", tmp_path / "20b-2", layers=2, progress=None)
    config = released_config("20b", layers=2)
    assert json.loads((folder / "config.json").read_text()) == config
    total = 0
    for path in _shards(folder):
        start, header = _header(path)
        header.pop("__metadata__")
        size = sum(int(np.prod(e["shape"])) * SAFETENSORS_DTYPES[e["dtype"]] for e in header.values())
        assert path.stat().st_size == start + size
        total += size
    assert total == json.loads((folder / INDEX_FILE).read_text())["metadata"]["total_size"]
    assert total == sum(t.nbytes for t in shaped_tensors(config))
    model, info = GptOssForCausalLM.from_pretrained(
        folder, quantization_config=Mxfp4Config(dequantize=True), output_loading_info=True
    )
    assert not any(info.values()), info
    with torch.no_grad():
        logits = model(torch.tensor([[200006, 1428, 200008, 12194, 200007]])).logits
    assert torch.isfinite(logits).all()
