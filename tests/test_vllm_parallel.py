"""The parallel layout vLLM is asked for, checked before anything loads: the model's shape, the machine's
devices, the combinations vLLM is known to break on; and what a multi-process CPU run needs."""

from __future__ import annotations

import subprocess
import sys

import pytest
from gptoss_hub.backends.vllm.parallel import cpu_thread_binding, tensor_parallel_sizes
from gptoss_hub.hardware import load_report

from gptoss_hub.dispatch import plan
from gptoss_hub.errors import InvalidRequestError
from gptoss_hub.shape import read_shape
from gptoss_hub.sources import resolve_model

DGX = load_report("8x-h100-vllm")
CPU = load_report("cpu-only")


def _vllm(model, report, **options):
    (candidate,) = [c for c in plan(model, report, backend="vllm", options=options).candidates]
    return candidate


def test_the_released_models_split_by_the_divisors_of_their_8_kv_heads():
    assert tensor_parallel_sizes(read_shape(resolve_model("120b")).shape) == [1, 2, 4, 8]
    assert tensor_parallel_sizes(read_shape(resolve_model("20b")).shape) == [1, 2, 4, 8]


def test_120b_on_8_h100s_takes_tensor_parallel_8_and_refuses_16_with_the_reason():
    assert _vllm("120b", DGX, tensor_parallel_size=8).viable
    refused = _vllm("120b", DGX, tensor_parallel_size=16)
    reason, devices = refused.reasons
    assert "need 16 GPUs; this machine has 8" in devices
    assert "tensor_parallel_size=16 cannot split" in reason and "8 KV heads and 64 query heads" in reason
    assert "use 1, 2, 4, 8" in reason


def test_more_ranks_than_gpus_is_refused_unless_spread_over_nodes():
    (reason,) = _vllm("120b", DGX, tensor_parallel_size=8, pipeline_parallel_size=2).reasons
    assert "16 ranks on this machine need 16 GPUs; this machine has 8" in reason
    assert _vllm("120b", DGX, tensor_parallel_size=8, pipeline_parallel_size=2, nnodes=2, master_addr="10.0.0.1").viable
    (uneven,) = _vllm("120b", DGX, tensor_parallel_size=8, nnodes=3).reasons
    assert "do not split evenly over 3 nodes" in uneven
    assert "nnodes is for the mp executor" in " ".join(
        _vllm("120b", DGX, nnodes=2, distributed_executor_backend="ray").reasons
    )


def test_on_a_cpu_ray_eager_pipelines_and_more_ranks_than_cores_are_refused():
    ray = " ".join(_vllm("tiny", CPU, distributed_executor_backend="ray").reasons)
    assert "vLLM's CPU platform does not run on Ray" in ray
    eager = " ".join(_vllm("tiny", CPU, pipeline_parallel_size=2, enforce_eager=True).reasons)
    assert "enforce_eager=True fails at the first request" in eager
    many = " ".join(_vllm("tiny", CPU, pipeline_parallel_size=4, data_parallel_size=4).reasons)
    assert "16 ranks need a core each; this machine has 8" in many
    assert _vllm("tiny", CPU, pipeline_parallel_size=2).viable


def test_the_tiny_model_with_one_kv_head_cannot_take_tensor_parallel():
    (reason,) = _vllm("tiny", CPU, tensor_parallel_size=2).reasons
    assert "1 KV heads" in reason and "use 1 (" in reason


def test_invalid_values_are_a_reason_and_other_backends_options_are_not():
    assert "invalid vLLM options" in " ".join(_vllm("tiny", CPU, pipeline_parallel_size=0).reasons)
    assert _vllm("tiny", CPU, fallback=True).viable  # an option of another backend: load()'s to refuse


def test_the_plan_command_takes_options():
    command = [sys.executable, "-m", "gptoss_hub.cli.main", "plan", "120b", "--hardware", "8x-h100-vllm", "--backend"]
    refused = subprocess.run([*command, "vllm", "--option", "tensor_parallel_size=16"], capture_output=True, text=True)
    assert refused.returncode == 1 and "gpt-oss does not replicate KV heads" in refused.stdout
    accepted = subprocess.run([*command, "vllm", "--option", "tensor_parallel_size=8"], capture_output=True, text=True)
    assert accepted.returncode == 0 and "-> vllm" in accepted.stdout


@pytest.mark.parametrize(
    ("ranks", "cpus", "binding"),
    [
        (2, [0, 1], "0|1"),
        (2, list(range(8)), "0-3|4-7"),
        (3, list(range(8)), "0-1|2-3|4-7"),
        (2, [0, 2, 4, 6], "0,2|4,6"),
    ],
)
def test_each_cpu_rank_gets_cores_of_its_own(ranks, cpus, binding):
    assert cpu_thread_binding(ranks, cpus) == binding


def test_a_cpu_binding_needs_a_core_per_rank():
    with pytest.raises(ValueError, match="3 ranks"):
        cpu_thread_binding(3, [0, 1])


@pytest.mark.slow  # load() finds the tiny-harmony checkpoint (built on first use)
def test_load_binds_threads_per_rank_and_passes_the_multi_node_options(monkeypatch):
    from gptoss_hub.backends.vllm import engine
    from gptoss_hub.hardware import probe

    from gptoss_hub.engine import LoadRequest

    report = probe()
    if engine.runs_on(report) != "cpu":
        pytest.skip("vLLM's CPU build is installed by .ci/run")
    started = {}
    # Recorded first, so the binding load() sets is undone after the test (later engines have one rank).
    monkeypatch.setenv("VLLM_CPU_OMP_THREADS_BIND", "recorded")
    monkeypatch.delenv("VLLM_CPU_OMP_THREADS_BIND")
    monkeypatch.setattr(engine.os, "sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.setattr(
        engine.VllmEngine, "start", classmethod(lambda cls, arguments, device: started.update(arguments))
    )
    options = {
        "pipeline_parallel_size": 2,
        "nnodes": 2,
        "node_rank": 0,
        "master_addr": "127.0.0.1",
        "master_port": 29511,
    }
    engine.load_vllm_engine(LoadRequest.of(resolve_model("tiny"), report, **options))
    assert started["nnodes"] == 2 and started["node_rank"] == 0 and started["master_port"] == 29511
    assert started["master_addr"] == "127.0.0.1" and started["pipeline_parallel_size"] == 2
    assert engine.os.environ.get("VLLM_CPU_OMP_THREADS_BIND") is None  # one rank per node: nothing to bind
    started.clear()
    engine.load_vllm_engine(LoadRequest.of(resolve_model("tiny"), report, pipeline_parallel_size=2))
    assert engine.os.environ["VLLM_CPU_OMP_THREADS_BIND"] == "0|1"
    with pytest.raises(InvalidRequestError, match="does not run on Ray"):
        engine.load_vllm_engine(LoadRequest.of(resolve_model("tiny"), report, distributed_executor_backend="ray"))


def test_closing_a_ray_engine_leaves_the_cluster_it_joined(monkeypatch):
    import types

    from gptoss_hub.backends.vllm import engine

    calls = []
    fake_ray = types.SimpleNamespace(is_initialized=lambda: True, shutdown=lambda: calls.append("shutdown"))
    monkeypatch.setitem(sys.modules, "ray", fake_ray)
    engine._leave_ray()
    assert calls == ["shutdown"]
    fake_ray.is_initialized = lambda: False
    engine._leave_ray()
    assert calls == ["shutdown"]  # not connected: nothing to leave


@pytest.mark.slow  # load() finds the tiny-harmony checkpoint (built on first use)
def test_a_follower_node_starts_workers_only(monkeypatch):
    from gptoss_hub.backends.vllm import engine, nodes
    from gptoss_hub.hardware import probe

    from gptoss_hub.engine import LoadRequest

    report = probe()
    if engine.runs_on(report) != "cpu":
        pytest.skip("vLLM's CPU build is installed by .ci/run")
    followers = []
    monkeypatch.setattr(nodes.WorkerNode, "start", classmethod(lambda cls, arguments: followers.append(arguments)))
    monkeypatch.setattr(engine.VllmEngine, "start", classmethod(lambda cls, arguments, device: pytest.fail("head")))
    options = {"pipeline_parallel_size": 2, "nnodes": 2, "node_rank": 1, "master_addr": "127.0.0.1"}
    engine.load_vllm_engine(LoadRequest.of(resolve_model("tiny"), report, **options))
    assert followers[0]["node_rank"] == 1 and followers[0]["device"] == "cpu"
    with pytest.raises(InvalidRequestError, match="node_rank=2 is not one of the 2 nodes"):
        engine.load_vllm_engine(LoadRequest.of(resolve_model("tiny"), report, **(options | {"node_rank": 2})))
