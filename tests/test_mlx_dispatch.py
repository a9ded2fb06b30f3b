"""Where the MLX backend is chosen, and what its rejections say, on recorded machines (nothing loads)."""

from __future__ import annotations

import pytest
from gptoss_hub.hardware import RuntimeBuild, load_fixture
from gptoss_hub.hardware.collect import probe_host
from gptoss_hub.hardware.recorded import RecordedHost, RecordedMachine

import gptoss_hub as gh
from gptoss_hub.released import released_config
from gptoss_hub.testing.sparse import write_sparse_checkpoint, write_sparse_gguf


def _candidate(plan, backend):
    return next(c for c in plan.candidates if c.backend == backend)


def _without_llamacpp_metal(report):
    builds = dict(report.runtime_builds)
    builds["llama_cpp"] = RuntimeBuild(distribution="llama-cpp-python", version="0.3.36", devices=("cpu",))
    return report.model_copy(update={"runtime_builds": builds})


def test_on_apple_silicon_llamacpp_leads_and_mlx_follows():
    plan = gh.plan("20b", load_fixture("m3-max"))
    assert plan.chosen.backend == "llamacpp/metal"
    mlx = _candidate(plan, "mlx/metal")
    assert mlx.viable and mlx.rank == 52 and mlx.memory.runtime == "through MLX"
    order = [c.backend for c in plan.candidates if c.viable]
    assert order.index("llamacpp/metal") < order.index("mlx/metal") < order.index("llamacpp/cpu")


def test_mlx_is_chosen_where_llamacpp_cannot_use_metal():
    plan = gh.plan("20b", _without_llamacpp_metal(load_fixture("m3-max")))
    assert plan.chosen.backend == "mlx/metal", plan.explain()
    assert "not built for Apple Metal" in " ".join(_candidate(plan, "llamacpp/metal").reasons)


def test_mlx_is_chosen_for_a_safetensors_checkpoint(tmp_path):
    """A fine-tune saved as safetensors: llama.cpp needs a GGUF first, MLX loads it as it is."""
    folder = write_sparse_checkpoint(released_config("20b"), tmp_path / "my-finetune")
    plan = gh.plan(str(folder), load_fixture("m3-max"))
    assert plan.chosen.backend == "mlx/metal", plan.explain()
    assert "holds no .gguf file" in " ".join(_candidate(plan, "llamacpp/metal").reasons)
    assert 12 * 1024**3 < plan.chosen.memory.resident_bytes < 16 * 1024**3  # MXFP4 experts stay MXFP4


def test_backend_mlx_picks_the_variant_that_can_run():
    report = load_fixture("m3-max")
    assert gh.plan("20b", report, backend="mlx").chosen.backend == "mlx/metal"


def test_120b_does_not_fit_the_share_of_unified_memory_metal_may_use():
    reasons = " ".join(_candidate(gh.plan("120b", load_fixture("m3-max")), "mlx/metal").reasons)
    assert "through MLX" in reasons and "Metal may use about 48 GiB of this machine's 64 GiB" in reasons


def test_rejections_on_linux_name_what_is_missing():
    report = load_fixture("cpu-only")
    plan = gh.plan("20b", report)
    assert "through Metal, on macOS with Apple silicon; this machine runs Linux" in " ".join(
        _candidate(plan, "mlx/metal").reasons
    )
    assert "mlx and mlx-lm are not installed: pip install 'gptoss-hub[mlx]'." in _candidate(plan, "mlx/cpu").reasons
    old = report.model_copy(update={"libc": "glibc 2.31"})
    assert "need glibc 2.35 or newer; this machine has glibc 2.31" in " ".join(
        _candidate(gh.plan("20b", old), "mlx/cpu").reasons
    )
    windows = report.model_copy(update={"os": "Windows"})
    assert "MLX has no build for Windows" in " ".join(_candidate(gh.plan("20b", windows), "mlx/cpu").reasons)


def test_an_mlx_without_a_build_for_the_device_says_which_to_install():
    report = load_fixture("cpu-only")
    runtimes = {**report.runtimes, "mlx": "0.32.4", "mlx_lm": "0.32.2"}
    builds = {**report.runtime_builds, "mlx": RuntimeBuild(distribution="mlx", version="0.32.4", devices=())}
    report = report.model_copy(update={"runtimes": runtimes, "runtime_builds": builds})
    assert "MLX here has no cpu build: install mlx[cpu] on Linux" in " ".join(
        _candidate(gh.plan("20b", report), "mlx/cpu").reasons
    )


def test_a_gguf_is_not_for_mlx(tmp_path):
    path = write_sparse_gguf(released_config("20b"), tmp_path / "model.gguf")
    reasons = " ".join(_candidate(gh.plan(str(path), load_fixture("m3-max")), "mlx/metal").reasons)
    assert "is GGUF; MLX loads safetensors checkpoints. Run it with backend='llamacpp'" in reasons
    repo = " ".join(_candidate(gh.plan("ggml-org/gpt-oss-20b-GGUF", load_fixture("m3-max")), "mlx/metal").reasons)
    assert "is GGUF" in repo


@pytest.mark.parametrize(
    ("system", "machine", "distributions", "devices"),
    [
        ("Darwin", "arm64", {"mlx": "0.32.4", "mlx-metal": "0.32.4"}, ("cpu", "metal")),
        ("Linux", "x86_64", {"mlx": "0.32.4", "mlx-cpu": "0.32.4"}, ("cpu",)),
        ("Linux", "x86_64", {"mlx": "0.32.4", "mlx-cuda-12": "0.32.4"}, ("cuda",)),
        ("Linux", "x86_64", {"mlx": "0.32.4"}, ()),  # mlx alone has no compiled part on Linux
    ],
)
def test_the_probe_reads_the_mlx_build_from_its_distributions(system, machine, distributions, devices):
    recorded = RecordedMachine(
        system=system,
        machine=machine,
        libc="glibc 2.36" if system == "Linux" else None,
        distributions={name: {"version": version} for name, version in distributions.items()},
    )
    report = probe_host(RecordedHost(recorded), detectors={"nvidia": None, "amd": None, "apple": None})
    assert report.runtime_builds["mlx"].devices == devices
    assert report.libc == recorded.libc
