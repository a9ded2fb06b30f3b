"""The MXFP4 export of tiny-harmony: the real checkpoints' layout, read by transformers' MXFP4 path on the CPU,
is the same model as its twin dequantized by `gptoss_hub.convert.mxfp4`."""

from __future__ import annotations

import json

import pytest

from gptoss_hub.engine import GenerationRequest
from gptoss_hub.testing import checkpoint_path, corpus_examples, dequantized_twin_path, mxfp4_checkpoint_path
from gptoss_hub.testing.config import CALL_ID, RETURN_ID, tiny_config_kwargs

torch = pytest.importorskip("torch")

EXPERTS = [f"model.layers.{n}.mlp.experts." for n in range(tiny_config_kwargs()["num_hidden_layers"])]


def _tensors(folder):
    from safetensors.torch import load_file

    return load_file(folder / "model.safetensors")


@pytest.fixture(scope="module")
def loaded():
    """(MXFP4 export, dequantized twin), each loaded by `gh.load` on transformers/cpu with default options."""
    import gptoss_hub as gh

    mxfp4 = gh.load(str(mxfp4_checkpoint_path()), backend="transformers/cpu")
    twin = gh.load(str(dequantized_twin_path()), backend="transformers/cpu")
    yield mxfp4, twin
    mxfp4.close()
    twin.close()


def test_paths_are_named_by_the_checkpoint_version(tmp_path, monkeypatch):
    monkeypatch.setenv("GPTOSS_HUB_CACHE", str(tmp_path))
    folder = checkpoint_path("tiny-random", build=False)
    assert mxfp4_checkpoint_path("tiny-random", build=False) == folder.with_name(folder.name + "-mxfp4")
    assert dequantized_twin_path("tiny-random", build=False) == folder.with_name(folder.name + "-mxfp4-twin")
    assert not any(tmp_path.iterdir())


@pytest.mark.slow  # trains tiny-harmony on a fresh machine
def test_export_has_the_real_checkpoints_layout():
    source, export = checkpoint_path(), mxfp4_checkpoint_path()
    original, tensors = _tensors(source), _tensors(export)
    config = tiny_config_kwargs()
    experts, hidden, inter = config["num_local_experts"], config["hidden_size"], config["intermediate_size"]
    # [experts, out, in / 32, 16]: the 32-value groups run along each projection's input.
    shapes = {"gate_up_proj": (experts, 2 * inter, hidden // 32), "down_proj": (experts, hidden, inter // 32)}
    expected_names = set(original) - {prefix + p for prefix in EXPERTS for p in shapes}
    for prefix in EXPERTS:
        for projection, shape in shapes.items():
            blocks, scales = tensors[f"{prefix}{projection}_blocks"], tensors[f"{prefix}{projection}_scales"]
            assert (blocks.dtype, tuple(blocks.shape)) == (torch.uint8, (*shape, 16))
            assert (scales.dtype, tuple(scales.shape)) == (torch.uint8, shape)
            expected_names |= {f"{prefix}{projection}_blocks", f"{prefix}{projection}_scales"}
            # The bias stays a float tensor beside the MXFP4 weight, as in the real checkpoints.
            assert torch.equal(tensors[f"{prefix}{projection}_bias"], original[f"{prefix}{projection}_bias"])
    assert set(tensors) == expected_names
    for name in expected_names & set(original):
        assert tensors[name].dtype == original[name].dtype and torch.equal(tensors[name], original[name]), name

    exported = json.loads((export / "config.json").read_text())
    assert exported.pop("quantization_config") == {
        "modules_to_not_convert": [
            "model.layers.*.self_attn",
            "model.layers.*.mlp.router",
            "model.embed_tokens",
            "lm_head",
        ],
        "quant_method": "mxfp4",
    }
    assert exported == json.loads((source / "config.json").read_text())
    for name in ("generation_config.json", "tokenizer.json", "tokenizer_config.json"):
        assert (export / name).read_bytes() == (source / name).read_bytes(), name
    assert "quantization_config" not in json.loads((dequantized_twin_path() / "config.json").read_text())


@pytest.mark.slow  # trains tiny-harmony on a fresh machine
def test_blocks_hold_the_transposed_weights_and_the_twin_their_values():
    """Independently of transformers: the blocks dequantize to the original `[experts, out, in]` weights
    (within MXFP4's error), and the twin holds exactly those values in transformers' `[experts, in, out]`."""
    from gptoss_hub.convert.mxfp4 import dequantize_hf

    original, tensors, twin = (
        _tensors(checkpoint_path()),
        _tensors(mxfp4_checkpoint_path()),
        _tensors(dequantized_twin_path()),
    )
    for prefix in EXPERTS:
        for projection in ("gate_up_proj", "down_proj"):
            name = prefix + projection
            values = torch.from_numpy(
                dequantize_hf(tensors[name + "_blocks"].numpy(), tensors[name + "_scales"].numpy())
            )
            weight = original[name].transpose(1, 2)
            error = float((values - weight).norm() / weight.norm())
            assert 0 < error < 0.2, (name, error)
            if values.shape[1] == values.shape[2]:
                # down_proj is square in the tiny shape: read the other way round, it would be far off.
                assert float((values.transpose(1, 2) - weight).norm() / weight.norm()) > 0.5
            assert twin[name].dtype == original[name].dtype
            assert torch.equal(twin[name], values.transpose(1, 2)), name


@pytest.mark.slow  # trains tiny-harmony on a fresh machine
def test_info_says_mxfp4(loaded):
    mxfp4, twin = loaded
    assert mxfp4.info.backend == twin.info.backend == "transformers/cpu"
    assert "mxfp4" in (mxfp4.info.quantization or "")
    assert twin.info.quantization is None


@pytest.mark.slow  # trains tiny-harmony on a fresh machine
def test_transformers_dequantizes_to_exactly_the_twins_weights(loaded):
    mxfp4, twin = (m._engine.model.state_dict() for m in loaded)
    assert set(mxfp4) == set(twin)
    for name, value in twin.items():
        # transformers dequantizes the experts to bfloat16 whatever the model's dtype; the backend widens them
        # back to the model's (float32 here), which is exact, so every tensor equals the twin's, dtype included.
        assert mxfp4[name].dtype == value.dtype and torch.equal(mxfp4[name], value), name


def _greedy(model, example) -> list[int]:
    request = GenerationRequest(
        prompt_ids=list(example.prompt_ids),
        temperature=0.0,
        max_tokens=len(example.completion_ids) + 4,
        stop_token_ids=[RETURN_ID, CALL_ID],
    )
    return [t for chunk in model._engine.generate(request) for t in chunk.token_ids]


def _sample(examples, per_group: int = 2):
    """The first `per_group` examples of each kind, as a first turn and as a second turn."""
    picked: dict[tuple[str, int], list] = {}
    for example in examples:
        group = picked.setdefault((example.kind, min(example.earlier_turns, 1)), [])
        if len(group) < per_group:
            group.append(example)
    return [e for group in picked.values() for e in group]


@pytest.mark.slow  # trains tiny-harmony on a fresh machine
def test_greedy_ids_equal_the_twins(loaded):
    """Greedy decoding through the KV cache, as `Model.chat` runs it, on corpus prompts of every kind."""
    mxfp4, twin = loaded
    examples = _sample(corpus_examples())
    assert len(examples) == 20  # seven kinds of turn, three of them (answers and weather) also as second turns
    differ = []
    for example in examples:
        got, wanted = _greedy(mxfp4, example), _greedy(twin, example)
        assert wanted and wanted[-1] in (RETURN_ID, CALL_ID)
        if got != wanted:
            differ.append(example.label)
    assert not differ, f"{len(differ)}/{len(examples)} differ: {differ}"


def _argmax_along(model, examples, batch: int = 16) -> list[list[int]]:
    """Per example, the model's argmax at each completion position, the completion fed in (teacher forcing).

    Where it equals the completion, greedy decoding produces the completion (by induction over positions).
    Only the completion positions go through the 201,088-row output layer, which costs the most.
    """
    out = []
    for start in range(0, len(examples), batch):
        chunk = examples[start : start + batch]
        rows = [list(e.prompt_ids) + list(e.completion_ids[:-1]) for e in chunk]
        ids = torch.zeros(len(rows), max(map(len, rows)), dtype=torch.long)
        for row, tokens in enumerate(rows):
            ids[row, : len(tokens)] = torch.tensor(tokens)  # right padding never reaches earlier positions
        with torch.inference_mode():
            hidden = model.model(input_ids=ids).last_hidden_state
            for row, example in enumerate(chunk):
                begin = len(example.prompt_ids) - 1
                states = hidden[row, begin : begin + len(example.completion_ids)]
                out.append(model.lm_head(states).argmax(-1).tolist())
    return out


@pytest.mark.slow
def test_the_whole_corpus_decodes_the_same(loaded):
    """Over all 690 corpus turns, both models choose the same token at every completion position, and those
    are the corpus completions: MXFP4 costs tiny-harmony none of its taught turns."""
    mxfp4, twin = (m._engine.model for m in loaded)
    examples = corpus_examples()
    chosen_mxfp4, chosen_twin = _argmax_along(mxfp4, examples), _argmax_along(twin, examples)
    differ = [e.label for e, a, b in zip(examples, chosen_mxfp4, chosen_twin, strict=True) if a != b]
    assert not differ, f"{len(differ)}/{len(examples)} differ: {differ[:3]}"
    missed = [e.label for e, a in zip(examples, chosen_twin, strict=True) if a != list(e.completion_ids)]
    assert not missed, f"{len(missed)}/{len(examples)} corpus turns lost to MXFP4: {missed[:3]}"


@pytest.mark.slow  # trains tiny-harmony on a fresh machine
@pytest.mark.parametrize(("dtype", "expected"), [("bfloat16", torch.bfloat16), ("auto", torch.float32)])
def test_the_two_loads_are_the_same_model(dtype, expected):
    """In bfloat16 and in the checkpoint's own float32, the expert matmuls run in the same dtype on both sides,
    so the logits are identical."""
    import gptoss_hub as gh

    example = _sample(corpus_examples(), per_group=1)[1]
    logits = []
    for path in (mxfp4_checkpoint_path(), dequantized_twin_path()):
        model = gh.load(str(path), backend="transformers/cpu", dtype=dtype)
        try:
            with torch.inference_mode():
                ids = torch.tensor([list(example.prompt_ids)])
                logits.append(model._engine.model(input_ids=ids, logits_to_keep=8).logits)
        finally:
            model.close()
    assert logits[0].dtype == expected
    assert torch.equal(logits[0], logits[1])


def test_experts_off_the_mxfp4_grid_are_refused():
    from gptoss_hub.testing.mxfp4_exports import _quantize

    with pytest.raises(ValueError, match="multiple of 32 input values"):
        _quantize(torch.zeros(2, 48, 64))
