"""GGUF export: MXFP4 layouts, tensor mapping and the embedded tokenizer, read back with gguf's reader."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

gguf = pytest.importorskip("gguf", reason="the llamacpp extra (gguf) is installed by .ci/run")

from gguf import GGMLQuantizationType, GGUFReader  # noqa: E402
from gguf.quants import dequantize  # noqa: E402

from gptoss_hub.convert import mxfp4  # noqa: E402
from gptoss_hub.errors import CheckpointError, InvalidRequestError, ModelNotFoundError  # noqa: E402

RNG = np.random.default_rng(7)


def _random_hf_mxfp4(shape=(3, 5, 4)):
    blocks = RNG.integers(0, 256, (*shape, 16), dtype=np.uint8)
    scales = RNG.integers(100, 140, shape, dtype=np.uint8)
    return blocks, scales


def test_hf_blocks_repack_to_the_values_ggml_decodes():
    blocks, scales = _random_hf_mxfp4()
    packed = mxfp4.repack_hf_to_ggml(blocks, scales)
    assert packed.shape == (3, 5, 4 * 17)
    assert np.array_equal(dequantize(packed, GGMLQuantizationType.MXFP4), mxfp4.dequantize_hf(blocks, scales))
    back = mxfp4.repack_ggml_to_hf(packed)
    assert np.array_equal(back[0], blocks) and np.array_equal(back[1], scales)


def test_hf_dequantization_follows_the_e2m1_table():
    # One group: code n at value n (low nibble first), exponent 128 doubles every value.
    codes = np.arange(32, dtype=np.uint8) % 16
    blocks = (codes[0::2] | (codes[1::2] << 4)).reshape(1, 16)
    values = mxfp4.dequantize_hf(blocks, np.array([128], dtype=np.uint8))
    assert values.tolist() == (2 * mxfp4.E2M1_VALUES[codes]).tolist()


def test_quantize_hf_is_exact_on_representable_values():
    blocks, scales = _random_hf_mxfp4((2, 2))
    values = mxfp4.dequantize_hf(blocks, scales)
    assert np.array_equal(mxfp4.dequantize_hf(*mxfp4.quantize_hf(values)), values)
    with pytest.raises(ValueError, match="multiple of 32"):
        mxfp4.quantize_ggml(np.zeros((2, 48), dtype=np.float32))


def _fields(reader):
    """The GGUF's scalar metadata (the long tokenizer arrays left out)."""
    skipped = ("tokenizer.ggml.tokens", "tokenizer.ggml.token_type", "tokenizer.ggml.merges")
    return {name: field.contents() for name, field in reader.fields.items() if name not in skipped}


@pytest.fixture(scope="module")
def tiny_f32_gguf():
    from gptoss_hub.testing.gguf_exports import gguf_path

    return gguf_path("tiny-random", "f32")


@pytest.fixture(scope="module")
def tiny_tensors():
    from safetensors.numpy import load_file

    from gptoss_hub.testing import checkpoint_path

    return load_file(checkpoint_path("tiny-random") / "model.safetensors")


@pytest.mark.slow
def test_f32_export_maps_every_tensor_exactly(tiny_f32_gguf, tiny_tensors):
    reader = GGUFReader(tiny_f32_gguf)
    tensors = {t.name: t for t in reader.tensors}
    assert all(t.tensor_type == GGMLQuantizationType.F32 for t in tensors.values())
    assert len(tensors) == 3 + 2 * (13 + 6)  # embeddings, norm, output; per layer 13 + experts 6
    hf = tiny_tensors

    def data(name):
        return np.asarray(tensors[name].data)

    assert np.array_equal(data("token_embd.weight"), hf["model.embed_tokens.weight"])
    assert np.array_equal(data("output.weight"), hf["lm_head.weight"])
    assert np.array_equal(data("blk.1.attn_sinks.weight"), hf["model.layers.1.self_attn.sinks"])
    assert np.array_equal(data("blk.0.ffn_gate_inp.weight"), hf["model.layers.0.mlp.router.weight"])
    assert np.array_equal(
        data("blk.0.post_attention_norm.weight"), hf["model.layers.0.post_attention_layernorm.weight"]
    )
    # Experts: transformers computes x @ W with W [experts, in, out] and gate/up interleaved by column.
    gate_up = hf["model.layers.1.mlp.experts.gate_up_proj"]
    assert np.array_equal(data("blk.1.ffn_gate_exps.weight"), gate_up.transpose(0, 2, 1)[:, 0::2])
    assert np.array_equal(data("blk.1.ffn_up_exps.weight"), gate_up.transpose(0, 2, 1)[:, 1::2])
    bias = hf["model.layers.1.mlp.experts.gate_up_proj_bias"]
    assert np.array_equal(data("blk.1.ffn_gate_exps.bias"), bias[:, 0::2])
    assert np.array_equal(data("blk.1.ffn_up_exps.bias"), bias[:, 1::2])
    down = hf["model.layers.0.mlp.experts.down_proj"]
    assert np.array_equal(data("blk.0.ffn_down_exps.weight"), down.transpose(0, 2, 1))


@pytest.mark.slow
def test_export_embeds_the_harmony_tokenizer_and_hyperparameters(tiny_f32_gguf):
    reader = GGUFReader(tiny_f32_gguf)
    fields = _fields(reader)
    assert fields["general.architecture"] == "gpt-oss"
    assert fields["tokenizer.ggml.model"] == "gpt2" and fields["tokenizer.ggml.pre"] == "gpt-4o"
    assert fields["tokenizer.ggml.eos_token_id"] == 200002  # <|return|>
    assert fields["gpt-oss.expert_count"] == 4 and fields["gpt-oss.expert_used_count"] == 2
    assert fields["gpt-oss.attention.sliding_window"] == 128
    assert fields["gpt-oss.rope.scaling.type"] == "yarn" and fields["gpt-oss.rope.freq_base"] == 150000.0
    tokens = reader.fields["tokenizer.ggml.tokens"]
    types = reader.fields["tokenizer.ggml.token_type"].contents()
    assert len(tokens.data) == 201088 == len(types)
    assert bytes(tokens.parts[tokens.data[200012]]).decode() == "<|call|>"
    control = int(gguf.TokenType.CONTROL)
    assert types[200005] == control and types[200012] == control and types[1000] == int(gguf.TokenType.NORMAL)
    merges = reader.fields["tokenizer.ggml.merges"]
    assert len(merges.data) > 400_000


def _mxfp4_checkpoint(tmp_path, source):
    """`source` rewritten with its experts in the released checkpoints' MXFP4 layout."""
    from safetensors.numpy import load_file, save_file

    folder = tmp_path / "tiny-mxfp4"
    shutil.copytree(source, folder)
    tensors = load_file(folder / "model.safetensors")
    for name in [n for n in tensors if n.endswith(("gate_up_proj", "down_proj"))]:
        rows = tensors.pop(name).transpose(0, 2, 1)  # [experts, out, in]
        tensors[name + "_blocks"], tensors[name + "_scales"] = mxfp4.quantize_hf(rows)
    save_file(tensors, folder / "model.safetensors")
    config = json.loads((folder / "config.json").read_text())
    config["quantization_config"] = {"quant_method": "mxfp4"}
    (folder / "config.json").write_text(json.dumps(config))
    return folder, tensors


@pytest.mark.slow
def test_mxfp4_source_is_repacked_exactly_and_dequantized_for_float_outtypes(tmp_path):
    from gptoss_hub.convert import convert_checkpoint
    from gptoss_hub.testing import checkpoint_path

    folder, hf = _mxfp4_checkpoint(tmp_path, checkpoint_path("tiny-random"))
    blocks = hf["model.layers.0.mlp.experts.gate_up_proj_blocks"]
    scales = hf["model.layers.0.mlp.experts.gate_up_proj_scales"]
    rows = mxfp4.dequantize_hf(blocks, scales)

    quantized = {t.name: t for t in GGUFReader(convert_checkpoint(folder, tmp_path / "q.gguf", "mxfp4")).tensors}
    gate = quantized["blk.0.ffn_gate_exps.weight"]
    assert gate.tensor_type == GGMLQuantizationType.MXFP4
    assert np.array_equal(np.asarray(gate.data).reshape(4, 64, -1), mxfp4.repack_hf_to_ggml(blocks, scales)[:, 0::2])
    assert quantized["token_embd.weight"].tensor_type == GGMLQuantizationType.BF16
    assert quantized["blk.0.ffn_gate_exps.bias"].tensor_type == GGMLQuantizationType.F32

    floats = {t.name: t for t in GGUFReader(convert_checkpoint(folder, tmp_path / "f.gguf", "f32")).tensors}
    assert np.array_equal(np.asarray(floats["blk.0.ffn_up_exps.weight"].data), rows[:, 1::2])


def test_bf16_export_rounds_like_torch(tmp_path):
    torch = pytest.importorskip("torch")
    from gptoss_hub.convert.writer import _bf16_bits

    values = RNG.normal(size=1000).astype(np.float32)
    expected = torch.from_numpy(values).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    assert np.array_equal(_bf16_bits(values), expected)


def test_bad_sources_and_outtypes_are_typed_errors(tmp_path):
    from gptoss_hub.convert import convert_checkpoint

    with pytest.raises(ModelNotFoundError, match=r"no config\.json"):
        convert_checkpoint(tmp_path, tmp_path / "x.gguf")
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(CheckpointError, match="not gpt_oss"):
        convert_checkpoint(tmp_path, tmp_path / "x.gguf")
    with pytest.raises(InvalidRequestError, match="outtype must be one of"):
        convert_checkpoint(tmp_path, tmp_path / "x.gguf", "q4")  # type: ignore[arg-type]


@pytest.mark.slow
def test_convert_command(tmp_path, capsys):
    from gptoss_hub.cli.main import main

    out = tmp_path / "tiny.gguf"
    assert main(["convert", "tiny-random", str(out), "--outtype", "bf16"]) == 0
    assert "wrote" in capsys.readouterr().out and out.stat().st_size > 0
    assert main(["convert", "tiny-random", str(out)]) == 2  # exists, no --force
    assert "--force" in capsys.readouterr().err
    assert main(["convert", "tiny-random", str(tmp_path / "tiny.bin")]) == 2


@pytest.mark.slow
def test_a_failed_conversion_leaves_no_file(tmp_path):
    from gptoss_hub.convert import convert_checkpoint
    from gptoss_hub.testing import checkpoint_path

    folder = tmp_path / "no-tokenizer"
    shutil.copytree(checkpoint_path("tiny-random"), folder)
    (folder / "tokenizer.json").unlink()
    with pytest.raises(CheckpointError, match="no usable tokenizer"):
        convert_checkpoint(folder, tmp_path / "out.gguf", "f32")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["no-tokenizer"]
