"""The llama.cpp backend's place in dispatch and its load arguments, on recorded machines (no llama.cpp needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from gptoss_hub.backends.llamacpp import LLAMACPP_BACKENDS
from gptoss_hub.backends.llamacpp import engine as llamacpp_engine
from gptoss_hub.backends.llamacpp.files import GGUF_REPOS, choose_gguf_files, gguf_repo, source_problem
from gptoss_hub.hardware import load_fixture

import gptoss_hub as gh
from gptoss_hub.engine import LoadRequest
from gptoss_hub.errors import InvalidRequestError, ModelNotFoundError
from gptoss_hub.sources import resolve_model

METAL, CUDA, ROCM, CPU = LLAMACPP_BACKENDS


@pytest.mark.parametrize(
    ("fixture", "model", "chosen"),
    [
        ("m3-max", "20b", "llamacpp/metal"),  # Apple Metal: llama.cpp first (docs/architecture.md)
        ("cpu-only", "20b", "llamacpp/cpu"),  # no GPU: llama.cpp first
        ("rtx-4090", "20b", "llamacpp/cuda"),  # 24 GB with a CUDA build of llama.cpp holds 20b in MXFP4
    ],
)
def test_llamacpp_is_chosen_where_the_policy_says(fixture, model, chosen):
    assert gh.plan(model, load_fixture(fixture)).chosen.backend == chosen


def test_memory_decides_with_the_device_llamacpp_would_use():
    on_mac = gh.plan("120b", load_fixture("m3-max"), backend="llamacpp/metal").candidates[0]
    assert not on_mac.viable
    assert on_mac.reasons[0] == (
        "openai/gpt-oss-120b needs about 68 GiB as MXFP4 GGUF on the GPU with a 8192-token context; the metal GPU "
        "may use about 48 GiB of this machine's 64 GiB of unified memory."
    )
    on_4090 = gh.plan("120b", load_fixture("rtx-4090"), backend="llamacpp/cuda").candidates[0]
    assert "of 1 cuda GPU" in on_4090.reasons[0]
    # The CPU variant counts the RAM, and where a GPU is present it comes after every GPU backend.
    on_4090_cpu = next(
        c
        for c in gh.plan("20b", load_fixture("rtx-4090"), backend="llamacpp").candidates
        if c.backend == "llamacpp/cpu"
    )
    assert on_4090_cpu.rank == 15 and "a GPU is here" in on_4090_cpu.adjustments[0]


def test_each_variant_says_what_its_device_lacks():
    reasons = {c.backend: c.reasons for c in gh.plan("20b", load_fixture("m3-max"), backend="llamacpp").candidates}
    assert reasons["llamacpp/cuda"] == ("no CUDA GPU was found; llamacpp/cuda runs on one.",)
    assert reasons["llamacpp/metal"] == ()
    # A CPU-only build on a machine with a GPU: the GPU variant says how to rebuild.
    report = load_fixture("rtx-4090")
    cpu_build = report.model_copy(
        update={"runtime_builds": {k: v for k, v in report.runtime_builds.items() if k != "llama_cpp"}}
    )
    cuda = next(c for c in gh.plan("20b", cpu_build, backend="llamacpp").candidates if c.backend == "llamacpp/cuda")
    assert "CMAKE_ARGS='-DGGML_CUDA=on'" in cuda.reasons[0]
    assert gh.plan("20b", load_fixture("m3-max"), backend="llamacpp", context=8192).chosen is not None


def test_not_installed_and_wrong_sources_say_what_to_do(tmp_path):
    h100 = load_fixture("h100")  # no llama-cpp-python in that recording
    reasons = CPU().check(h100, resolve_model("20b"))
    assert any("pip install 'gptoss-hub[llamacpp]'" in r for r in reasons)
    assert "not a GGUF repository" in source_problem(resolve_model("someorg/gpt-oss-finetune"))
    assert "gptoss-hub convert" in source_problem(resolve_model(str(tmp_path)))
    assert "remote endpoint" in source_problem(resolve_model("http://localhost:8000/v1"))
    (tmp_path / "model.gguf").write_bytes(b"GGUF")
    assert source_problem(resolve_model(str(tmp_path))) is None


def test_released_checkpoints_map_to_the_published_gguf_repos():
    assert gguf_repo(resolve_model("20b")) == GGUF_REPOS["openai/gpt-oss-20b"] == "ggml-org/gpt-oss-20b-GGUF"
    assert gguf_repo(resolve_model("120b")) == "ggml-org/gpt-oss-120b-GGUF"
    assert gguf_repo(resolve_model("someone/gpt-oss-20b-GGUF")) == "someone/gpt-oss-20b-GGUF"


def test_gguf_files_are_chosen_by_quantization_with_every_part():
    files = [
        "README.md",
        "gpt-oss-120b-mxfp4-00002-of-00003.gguf",
        "gpt-oss-120b-mxfp4-00001-of-00003.gguf",
        "gpt-oss-120b-mxfp4-00003-of-00003.gguf",
        "gpt-oss-120b-Q8_0.gguf",
    ]
    assert choose_gguf_files(files, "mxfp4") == sorted(files[1:4])
    assert choose_gguf_files(files, "q8_0") == ["gpt-oss-120b-Q8_0.gguf"]
    assert choose_gguf_files(files, None, filename="gpt-oss-120b-mxfp4-00002-of-00003.gguf") == sorted(files[1:4])
    assert choose_gguf_files(["only.gguf"], "mxfp4") == ["only.gguf"]
    with pytest.raises(ModelNotFoundError, match=r"available: gpt-oss-120b-Q8_0\.gguf, gpt-oss-120b-mxfp4\.gguf"):
        choose_gguf_files(files, "f16")
    with pytest.raises(ModelNotFoundError, match="pass filename="):
        choose_gguf_files(["a-mxfp4.gguf", "b-mxfp4.gguf"], "mxfp4")
    with pytest.raises(ModelNotFoundError, match=r"No \.gguf files"):
        choose_gguf_files(["config.json"], "mxfp4")


@pytest.fixture
def captured(monkeypatch):
    """What `load` would hand llama.cpp, without loading anything."""
    calls = {}

    def fake_open(path, settings, *, device):
        calls.update(path=path, settings=settings, device=device)
        return "engine"

    monkeypatch.setattr(llamacpp_engine.LlamaCppEngine, "open", staticmethod(fake_open))
    monkeypatch.setattr(
        "gptoss_hub.backends.llamacpp.files.local_gguf", lambda spec, quantization, filename=None: Path(quantization)
    )
    return calls


def test_load_offloads_every_layer_where_the_build_has_the_gpu(captured):
    spec = resolve_model("20b")
    METAL().load(LoadRequest.of(spec, load_fixture("m3-max"), device=None))
    assert captured["device"] == "metal" and captured["settings"]["n_gpu_layers"] == -1
    assert captured["settings"]["flash_attn"] is True and captured["path"] == Path("mxfp4")
    assert captured["settings"]["n_ctx"] == 8192 and captured["settings"]["n_threads"] == 16

    CPU().load(LoadRequest.of(spec, load_fixture("rtx-4090"), device="cpu", quantization="Q8_0"))
    assert captured["device"] == "cpu" and captured["settings"]["n_gpu_layers"] == 0
    assert captured["settings"]["flash_attn"] is False and captured["path"] == Path("Q8_0")

    CPU().load(LoadRequest.of(spec, load_fixture("cpu-only"), device=None, max_context=4096, n_gpu_layers=0))
    assert captured["device"] == "cpu" and captured["settings"]["n_ctx"] == 4096


def test_a_gpu_the_build_cannot_use_is_refused(captured):
    with pytest.raises(InvalidRequestError, match="CMAKE_ARGS='-DGGML_CUDA=on'"):
        CUDA().load(LoadRequest.of(resolve_model("20b"), load_fixture("cpu-only"), device="cuda"))


def test_asking_for_the_cpu_picks_the_cpu_variant_where_a_gpu_build_would_win():
    report = load_fixture("rtx-4090")
    assert gh.plan("20b", report, backend="llamacpp").chosen.backend == "llamacpp/cuda"
    on_cpu = gh.plan("20b", report, backend="llamacpp", device="cpu")
    assert on_cpu.chosen.backend == "llamacpp/cpu"
    cuda = next(c for c in on_cpu.candidates if c.backend == "llamacpp/cuda")
    assert cuda.reasons == ("device='cpu' was asked for; llamacpp/cuda runs on cuda.",)
