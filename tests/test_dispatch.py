import importlib.util
import json
import subprocess
import sys
from typing import ClassVar

import pytest
from gptoss_hub.hardware import CpuInfo, load_fixture, probe

import gptoss_hub as gh
from gptoss_hub.engine import Backend
from gptoss_hub.environment import requested_backend
from gptoss_hub.errors import BackendUnavailableError, InvalidRequestError
from gptoss_hub.plugins import BackendRegistry


def _backend(backend_name, backend_rank, reasons):
    class Fake(Backend):
        name: ClassVar[str] = backend_name
        rank: ClassVar[int] = backend_rank

        def check(self, report, spec):
            return list(reasons)

        def load(self, request):
            raise NotImplementedError

    return Fake


def _registry(*backends):
    registry = BackendRegistry()
    for backend in backends:
        registry.add(backend)
    return registry


def test_highest_viable_rank_wins_and_rejections_are_kept():
    registry = _registry(_backend("a/fast", 50, ["needs a GPU"]), _backend("a/slow", 5, []), _backend("b", 10, []))
    the_plan = gh.plan("tiny", probe(), registry=registry)
    assert [c.backend for c in the_plan.candidates] == ["a/fast", "b", "a/slow"]
    assert the_plan.chosen.backend == "b"
    assert "needs a GPU" in the_plan.explain()
    assert gh.plan("tiny", registry=registry, backend="a").chosen.backend == "a/slow"
    assert gh.plan("tiny", registry=registry, backend="a/slow").chosen.backend == "a/slow"


def test_no_viable_backend_raises_with_every_reason():
    registry = _registry(_backend("x", 1, ["x needs CUDA"]), _backend("y", 0, ["y is not installed"]))
    with pytest.raises(BackendUnavailableError, match=r"(?s)x needs CUDA.*y is not installed"):
        gh.plan("tiny", registry=registry).require()
    with pytest.raises(BackendUnavailableError, match="No backend named 'z'"):
        gh.plan("tiny", registry=registry, backend="z")


def test_transformers_cpu_rejects_models_that_do_not_fit_in_ram():
    small = probe(cpu_detector=lambda: CpuInfo(cores=4, ram_total_bytes=16 * 1024**3))
    the_plan = gh.plan("20b", small, backend="transformers")
    assert the_plan.chosen is None
    cpu = next(c for c in the_plan.candidates if c.backend == "transformers/cpu")
    assert "needs about 45 GiB of RAM in bf16" in cpu.reasons[0] and "this machine has 16 GiB" in cpu.reasons[0]
    big = probe(cpu_detector=lambda: CpuInfo(cores=4, ram_total_bytes=64 * 1024**3))
    assert gh.plan("20b", big, backend="transformers").chosen.backend == "transformers/cpu"


def test_transformers_gpu_variants_say_why_they_cannot_run():
    from gptoss_hub.hardware import load_fixture

    # A recorded machine without a GPU, so the answer does not depend on the machine the tests run on.
    the_plan = gh.plan("tiny", load_fixture("cpu-only"), backend="transformers")
    reasons = {c.backend: c.reasons for c in the_plan.candidates}
    assert set(reasons) == {
        "transformers/mxfp4+fa3",
        "transformers/mxfp4",
        "transformers/megablocks-bf16",
        "transformers/bf16",
        "transformers/cpu",
    }
    assert all(r[-1].startswith("no GPU was found; ") for n, r in reasons.items() if n != "transformers/cpu")
    assert the_plan.chosen.backend == "transformers/cpu"


def test_transformers_rejects_gguf_files(tmp_path):
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    the_plan = gh.plan(gguf, backend="transformers/cpu")
    assert the_plan.chosen is None
    assert "not GGUF (use llamacpp)" in the_plan.candidates[0].reasons[0]
    # A GGUF repo, as publishers name them, is refused the same way before anything is downloaded.
    repo = gh.plan("someorg/gpt-oss-20b-GGUF", backend="transformers/cpu")
    assert "not GGUF (use llamacpp)" in " ".join(repo.candidates[0].reasons)


def test_environment_variable_names_the_backend(monkeypatch):
    registry = _registry(_backend("a", 50, []), _backend("b", 10, []))
    monkeypatch.setenv("GPTOSS_HUB_BACKEND", "b")
    assert gh.plan("tiny", registry=registry, backend=requested_backend(None)).chosen.backend == "b"
    assert gh.plan("tiny", registry=registry, backend=requested_backend("a")).chosen.backend == "a"  # explicit wins
    # plan() is a function of its arguments: the variable reaches it only through load() and the command line.
    assert gh.plan("tiny", registry=registry).chosen.backend == "a"


@pytest.mark.skipif(
    importlib.util.find_spec("gptoss_hub_echo") is None, reason="the echo plugin is installed by .ci/run"
)
def test_load_and_the_plan_command_read_the_backend_variable(monkeypatch):
    monkeypatch.setenv("GPTOSS_HUB_BACKEND", "echo")
    with gh.load("tiny") as model:
        assert model.info.backend == "echo" and model.info.plan["preferences"]["backend"] == "echo"
    shown = subprocess.run(
        [sys.executable, "-m", "gptoss_hub.cli.main", "plan", "tiny", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert json.loads(shown.stdout)["chosen"] == "echo", shown.stderr


def test_serving_prefers_batching_backends():
    batching = _backend("batcher", 5, [])
    batching.batching = True
    registry = _registry(_backend("single", 50, []), batching)
    assert gh.plan("tiny", registry=registry).chosen.backend == "single"
    served = gh.plan("tiny", registry=registry, serving=True)
    assert served.chosen.backend == "batcher" and "serving=True" in served.chosen.adjustments[0]


def test_impossible_explicit_backend_and_no_backend_are_typed():
    from gptoss_hub.errors import NoBackendError

    registry = _registry(_backend("x", 1, ["x needs CUDA"]))
    with pytest.raises(NoBackendError):
        gh.plan("tiny", registry=registry).require()
    with pytest.raises(BackendUnavailableError, match="Backend 'x' cannot run") as info:
        gh.plan("tiny", registry=registry, backend="x").require()
    assert not isinstance(info.value, NoBackendError)


def test_context_length_counts_against_memory():
    report = probe(cpu_detector=lambda: CpuInfo(cores=4, ram_total_bytes=46 * 1024**3))
    assert gh.plan("20b", report, backend="transformers/cpu").chosen is not None
    long = gh.plan("20b", report, backend="transformers/cpu", context=131_072)
    assert long.chosen is None and "needs about 48 GiB" in long.candidates[0].reasons[0]
    with pytest.raises(InvalidRequestError):
        gh.plan("20b", report, context=0)


def test_plans_for_recorded_machines_are_json_ready():
    import json

    from gptoss_hub.hardware import load_fixture

    the_plan = gh.plan("120b", load_fixture("cpu-only"), backend="transformers")
    data = json.loads(json.dumps(the_plan.to_dict()))
    assert data["model"] == "openai/gpt-oss-120b" and data["chosen"] is None
    assert {c["backend"] for c in data["candidates"]} >= {"transformers/cpu", "transformers/mxfp4+fa3"}


def test_the_plan_shows_the_device_asked_for():
    the_plan = gh.plan("20b", load_fixture("rtx-4090"), backend="llamacpp", device="cpu")
    assert the_plan.to_dict()["preferences"]["device"] == "cpu"
    assert "context: 8192 tokens; device: cpu" in the_plan.explain()
    assert gh.plan("20b", load_fixture("rtx-4090")).to_dict()["preferences"]["device"] is None
