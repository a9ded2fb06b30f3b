"""Sizes come from the model's files, whatever the folder or file is called.

Sparse files (real headers over holes, `gptoss_hub.testing.sparse`) give the released sizes without the
weights, so every check here runs in a moment.
"""

import json
import os

import pytest
from gptoss_hub.hardware import load_fixture

import gptoss_hub as gh
from gptoss_hub.memory import GIB
from gptoss_hub.released import released_config
from gptoss_hub.shape import read_shape, shape_from_config
from gptoss_hub.sources import resolve_model
from gptoss_hub.testing.shaped import shaped_tensors
from gptoss_hub.testing.sparse import write_sparse_checkpoint, write_sparse_gguf


def _machine(ram_gib: int):
    """The recorded CPU-only machine (llama.cpp, vLLM's CPU build and transformers installed) with this RAM."""
    report = load_fixture("cpu-only")
    cpu = report.cpu.model_copy(update={"ram_total_bytes": ram_gib * GIB, "ram_available_bytes": ram_gib * GIB})
    return report.model_copy(update={"cpu": cpu})


def _reasons(the_plan, backend):
    return next(c for c in the_plan.candidates if c.backend == backend).reasons


@pytest.fixture(scope="module")
def finetune_20b(tmp_path_factory):
    return write_sparse_checkpoint(released_config("20b"), tmp_path_factory.mktemp("models") / "my-finetune")


def test_a_neutral_folder_is_sized_from_its_config_and_headers(finetune_20b):
    reading = read_shape(resolve_model(finetune_20b))
    assert reading.shape == shape_from_config(released_config("20b")) and not reading.guessed
    assert reading.describe() == "from config.json (in the folder) and 1 safetensors header"
    # The headers' bytes are the released checkpoint's: 12.8 GiB, of which the MXFP4 experts are 11.5 GiB.
    assert reading.stored.tensor_bytes == sum(t.nbytes for t in shaped_tensors(released_config("20b")))
    assert reading.stored.tensor_bytes == reading.shape.weights_bytes("mxfp4") == 13_761_264_768
    assert os.stat(finetune_20b / "model.safetensors").st_blocks * 512 < 2**20  # nothing but the header on disk


def test_plan_for_a_neutral_folder_rejects_what_does_not_fit(finetune_20b):
    """The first promise: on a 24 GiB CPU machine, nothing that runs out of memory is picked."""
    the_plan = gh.plan(finetune_20b, _machine(24))
    assert _reasons(the_plan, "vllm") == (
        "my-finetune needs about 50 GiB in bf16 through vLLM on the CPU with a 8192-token context; this machine "
        "has 24 GiB of RAM.",
    )
    assert _reasons(the_plan, "transformers/cpu") == (
        "my-finetune needs about 45 GiB of RAM in bf16 on the CPU (MXFP4 experts are dequantized there) with a "
        "8192-token context; this machine has 24 GiB. Use llama.cpp with a GGUF file, or a GPU.",
    )
    # llama.cpp would fit once the folder is converted to GGUF, and says how; nothing else is picked.
    llamacpp = next(c for c in the_plan.candidates if c.backend == "llamacpp/cpu")
    assert llamacpp.memory.fits and llamacpp.memory.needed_bytes < 24 * GIB
    assert llamacpp.reasons == (
        f"{finetune_20b} holds no .gguf file; convert the checkpoint first: gptoss-hub convert {finetune_20b} "
        "my-finetune.gguf --outtype mxfp4",
    )
    assert the_plan.chosen is None
    assert "sizes from config.json (in the folder) and 1 safetensors header" in the_plan.explain()


def test_the_plan_shows_each_candidates_memory_and_disk(finetune_20b):
    the_plan = gh.plan(finetune_20b, _machine(24))
    shown = {c["backend"]: c.get("memory") for c in the_plan.to_dict()["candidates"]}
    llamacpp = shown["llamacpp/cpu"]
    assert llamacpp["resident_bytes"] > llamacpp["needed_bytes"] > 0 and llamacpp["disk_bytes"] > 12 * GIB
    assert llamacpp["reclaimable_bytes"] == read_shape(resolve_model(finetune_20b)).shape.expert_bytes("gguf-mxfp4")
    assert "reclaimable" in the_plan.explain()


def test_120b_shapes_are_rejected_by_llamacpp_with_the_numbers(tmp_path):
    folder = write_sparse_checkpoint(released_config("120b"), tmp_path / "big-tune")
    reasons = _reasons(gh.plan(folder, _machine(24)), "llamacpp/cpu")
    assert reasons[-1].startswith("big-tune needs about ")
    assert reasons[-1].endswith(
        " GiB as MXFP4 GGUF on the CPU with a 8192-token context; this machine has 24 GiB of RAM."
    )
    needed = int(reasons[-1].split("about ")[1].split(" GiB")[0])
    assert 60 < needed < 80  # the non-expert weights, KV cache and buffers stay; repacked experts replace their pages
    assert gh.plan(folder, _machine(24)).chosen is None


def test_a_neutral_gguf_is_sized_from_its_metadata_and_tensor_table(tmp_path):
    path = write_sparse_gguf(released_config("20b"), tmp_path / "model.gguf")
    reading = read_shape(resolve_model(path))
    assert reading.shape == shape_from_config(released_config("20b")) and not reading.guessed
    assert reading.describe() == "from the GGUF metadata of model.gguf"
    stored = reading.stored
    assert stored.tensor_bytes == reading.shape.weights_bytes("gguf-mxfp4")
    assert stored.expert_bytes == stored.bytes_by_type["MXFP4"] == reading.shape.expert_bytes("gguf-mxfp4")
    on_small = gh.plan(path, _machine(12))
    assert _reasons(on_small, "llamacpp/cpu") == (
        "model.gguf needs about 16 GiB as MXFP4 GGUF on the CPU with a 8192-token context; this machine has 12 GiB "
        "of RAM.",
    )
    assert gh.plan(path, _machine(24)).chosen.backend == "llamacpp/cpu"


def test_a_folder_without_config_cannot_be_sized_and_says_so(tmp_path):
    folder = tmp_path / "weights-only"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"\0" * 16)
    the_plan = gh.plan(folder, _machine(24))
    expected = (
        f"cannot tell the size of weights-only, so its memory cannot be checked: {folder} has neither a config.json "
        "nor a .gguf file. Pass a folder holding its config.json, or a GGUF file."
    )
    for backend in ("llamacpp/cpu", "transformers/cpu", "vllm"):
        assert expected in _reasons(the_plan, backend), backend
    assert the_plan.chosen is None or the_plan.chosen.backend == "echo"


def test_a_broken_gguf_cannot_be_sized_and_says_why(tmp_path):
    path = tmp_path / "broken.gguf"
    path.write_bytes(b"GGUF\x03\x00\x00\x00")
    reasons = _reasons(gh.plan(path, _machine(24)), "llamacpp/cpu")
    assert reasons == (
        "cannot tell the size of broken.gguf, so its memory cannot be checked: broken.gguf is not a readable GGUF "
        "file (ValueError: the header ends early). Check that it is a complete gpt-oss GGUF file (download or "
        "convert it again).",
    )
    # Counts and lengths that point past the file are refused at once, never read or allocated.
    header = b"GGUF" + (3).to_bytes(4, "little") + (0).to_bytes(8, "little") + (1).to_bytes(8, "little")
    hostile = {
        "long-key.gguf": header + (2**62).to_bytes(8, "little"),
        "many-tensors.gguf": b"GGUF" + (3).to_bytes(4, "little") + (2**40).to_bytes(8, "little") + bytes(8),
        "huge-array.gguf": header
        + (1).to_bytes(8, "little")
        + b"k"
        + (9).to_bytes(4, "little")
        + (10).to_bytes(4, "little")
        + (2**50).to_bytes(8, "little"),
    }
    for name, data in hostile.items():
        (tmp_path / name).write_bytes(data)
        reading = read_shape(resolve_model(tmp_path / name))
        assert reading.shape is None and reading.basis.startswith(f"{name} is not a readable GGUF file (ValueError: ")


def test_a_name_is_only_a_last_resort_and_the_plan_says_it_is_a_guess(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    spec = resolve_model("someorg/gpt-oss-20b-finetune")
    reading = read_shape(spec)
    assert reading.guessed and reading.shape == shape_from_config(released_config("20b"))
    reasons = _reasons(gh.plan(spec, _machine(24)), "transformers/cpu")
    assert "(its size is guessed from the name 'someorg/gpt-oss-20b-finetune' as the released gpt-oss-20b" in reasons[0]
    unknown = read_shape(resolve_model("someorg/my-model"))
    assert unknown.shape is None and "HF_HUB_OFFLINE is set" in unknown.basis


def test_a_config_in_the_hugging_face_cache_is_read_offline(tmp_path, monkeypatch):
    cache = tmp_path / "hub"
    snapshot = cache / "models--someorg--renamed" / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text(json.dumps(released_config("120b")))
    (cache / "models--someorg--renamed" / "refs").mkdir()
    (cache / "models--someorg--renamed" / "refs" / "main").write_text("abc")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(cache))
    reading = read_shape(resolve_model("someorg/renamed"))
    assert reading.shape == shape_from_config(released_config("120b")) and not reading.guessed
    assert "Hugging Face cache" in reading.describe()


def test_hostile_or_broken_files_give_reasons_not_crashes(tmp_path):
    config = released_config("20b")
    cases = {
        "not-json": "{ not json",
        "strings": json.dumps({**config, "num_hidden_layers": "many"}),
        "a-list": json.dumps([1, 2, 3]),
    }
    for name, text in cases.items():
        folder = tmp_path / name
        folder.mkdir()
        (folder / "config.json").write_text(text)
        reading = read_shape(resolve_model(folder))
        assert reading.shape is None and "is not a gpt-oss config" in reading.basis, name
        reasons = _reasons(gh.plan(folder, _machine(24)), "transformers/cpu")
        assert any(r.startswith(f"cannot tell the size of {name}") for r in reasons), name
    # A safetensors header claiming 2**60 bytes is refused without reading or allocating it; the config
    # still gives the shape.
    folder = tmp_path / "huge-header"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "model.safetensors").write_bytes((2**60).to_bytes(8, "little") + b"{}")
    reading = read_shape(resolve_model(folder))
    assert reading.shape == shape_from_config(config) and reading.stored is None
    assert "safetensors headers could not be read (model.safetensors: model.safetensors is not a safetensors file" in (
        reading.basis
    )
    # Entries without offsets are a broken header, not a crash.
    (folder / "model.safetensors").write_bytes((2).to_bytes(8, "little") + b"{}")
    bad = json.dumps({"w": {"dtype": "BF16", "shape": [1]}}).encode()
    (folder / "other.safetensors").write_bytes(len(bad).to_bytes(8, "little") + bad)
    os.utime(folder / "config.json")  # readings are cached by the config's modification time
    assert "could not be read (other.safetensors: 'data_offsets')" in read_shape(resolve_model(folder)).basis


def test_a_gguf_repo_in_the_hugging_face_cache_is_read_offline(tmp_path, monkeypatch):
    cache = tmp_path / "hub"
    repo = cache / "models--someorg--quantized"
    snapshot = repo / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc")
    write_sparse_gguf(released_config("120b"), snapshot / "model-mxfp4.gguf")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(cache))
    reading = read_shape(resolve_model("someorg/quantized"))
    assert reading.shape == shape_from_config(released_config("120b")) and not reading.guessed
    assert reading.describe() == "from the GGUF metadata of model-mxfp4.gguf"
