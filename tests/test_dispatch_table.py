"""What `gh.load("20b")` and `gh.load("120b")` pick on every recorded machine, and why the others lose.

The table follows the dispatch policy in docs/architecture.md (Hopper: MXFP4 + FA3; Blackwell: MXFP4; other CUDA and ROCm: bf16;
Apple and CPU: llama.cpp) refined by memory and by what each recording has installed.
"""

from __future__ import annotations

import pytest
from gptoss_hub.hardware import fixture_names, load_fixture

import gptoss_hub as gh

GIB = 1024**3

#: fixture -> (choice for 20b, choice for 120b); `None`: nothing installed there can run it.
TABLE = {
    "h100": ("transformers/mxfp4+fa3", "transformers/mxfp4+fa3"),  # 120b in MXFP4 fits one 80 GB H100
    "2x-h100": ("transformers/mxfp4+fa3", "transformers/mxfp4+fa3"),
    "8x-h100": ("transformers/mxfp4+fa3", "transformers/mxfp4+fa3"),
    # With vLLM too: a single user still gets transformers with MXFP4 and FA3 (vLLM leads with serving=True).
    "8x-h100-vllm": ("transformers/mxfp4+fa3", "transformers/mxfp4+fa3"),
    # No `kernels` package: no MXFP4 or FA3; 20b fits in bf16, 120b does not (about 240 GB), vLLM runs MXFP4.
    "h200": ("transformers/bf16", "vllm"),
    # Recorded on a real H200 with torch and transformers only: 20b in bf16; 120b in bf16 (about 240 GB) does
    # not fit, and no runtime that holds MXFP4 is installed.
    "h200-real": ("transformers/bf16", None),
    "b200": ("transformers/mxfp4", "transformers/mxfp4"),
    "rtx-pro-6000": ("transformers/mxfp4", "transformers/mxfp4"),
    # triton 3.3.1 is too old for MXFP4 and bf16 does not fit 32 GB: only the CPU is left.
    "rtx-5090": ("transformers/cpu", None),
    # 20b in bf16 (about 48 GB) does not fit 40 GB, so MXFP4 through triton kernels wins there.
    "a100-40gb": ("transformers/mxfp4", None),
    "rtx-4090": ("llamacpp/cuda", None),  # llama.cpp built with CUDA holds 20b in MXFP4 in 24 GB
    "t4": (None, None),
    "mi300x": ("transformers/bf16", "transformers/bf16"),
    "mi300x-kfd": ("transformers/bf16", "transformers/cpu"),
    "rx-7900-xtx": ("transformers/cpu", None),
    "m3-max": ("llamacpp/metal", None),
    "cpu-only": ("llamacpp/cpu", None),
    "nvidia-driver-broken": ("transformers/cpu", "transformers/cpu"),
}


def test_every_recorded_machine_is_in_the_table():
    assert set(TABLE) == set(fixture_names())


@pytest.mark.parametrize("fixture", sorted(TABLE))
@pytest.mark.parametrize("model", ["20b", "120b"])
def test_the_choice_on_every_recorded_machine(fixture, model):
    the_plan = gh.plan(model, load_fixture(fixture))
    expected = TABLE[fixture][("20b", "120b").index(model)]
    assert (the_plan.chosen.backend if the_plan.chosen else None) == expected, the_plan.explain()
    for candidate in the_plan.candidates:
        # Every rejection is a sentence a user can act on, not a code.
        assert all(len(reason.split()) >= 4 for reason in candidate.reasons), candidate


def test_rejections_name_the_missing_piece():
    def reasons(model, fixture, backend):
        plan = gh.plan(model, load_fixture(fixture))
        return " ".join(next(c for c in plan.candidates if c.backend == backend).reasons)

    assert "triton 3.3.1" in reasons("20b", "rtx-5090", "transformers/mxfp4")
    assert "kernels" in reasons("20b", "h200", "transformers/mxfp4+fa3")
    assert "Hopper" in reasons("20b", "b200", "transformers/mxfp4+fa3")
    assert "GiB" in reasons("20b", "a100-40gb", "transformers/bf16")  # memory, with the figures
    assert "compute capability 7.5" in reasons("20b", "m3-max", "transformers/mxfp4")


def test_on_the_cpu_only_machine_without_llamacpp_transformers_runs_on_the_cpu_if_ram_allows():
    report = load_fixture("cpu-only")
    assert gh.plan("20b", report).chosen.backend == "llamacpp/cpu"
    runtimes = {name: version for name, version in report.runtimes.items() if name != "llama_cpp"}
    without = report.model_copy(update={"runtimes": runtimes})
    # The recording runs under a 32 GiB cgroup limit: too little for 20b in bf16, and the plan says so.
    limited = gh.plan("20b", without)
    assert limited.chosen is None
    cpu = next(c for c in limited.candidates if c.backend == "transformers/cpu")
    assert "needs about 45 GiB of RAM in bf16" in cpu.reasons[0] and "this machine has 32 GiB" in cpu.reasons[0]
    llamacpp = next(c for c in limited.candidates if c.backend == "llamacpp/cpu")
    assert "llama-cpp-python is not installed" in llamacpp.reasons[0]
    # The same machine without the limit (64 GB of RAM): vLLM's CPU build, installed there, then transformers.
    unlimited = without.model_copy(update={"cpu": without.cpu.model_copy(update={"ram_limit_bytes": None})})
    assert gh.plan("20b", unlimited).chosen.backend == "vllm"
    no_vllm = {name: version for name, version in runtimes.items() if name != "vllm"}
    assert gh.plan("20b", unlimited.model_copy(update={"runtimes": no_vllm})).chosen.backend == "transformers/cpu"


def test_mxfp4_outside_hopper_and_blackwell_comes_after_bf16_when_bf16_fits():
    """On an 80 GB A100 both fit: the launch recommendations put bf16 (MegaBlocks) first there."""
    report = load_fixture("a100-40gb")
    gpu = report.accelerators[0]
    roomy = gpu.model_copy(update={"memory_total_bytes": 80 * GIB, "memory_free_bytes": 79 * GIB})
    a100_80 = report.model_copy(update={"accelerators": (roomy,)})
    the_plan = gh.plan("20b", a100_80, backend="transformers")
    viable = [c.backend for c in the_plan.candidates if c.viable]
    assert viable[:3] == ["transformers/megablocks-bf16", "transformers/bf16", "transformers/mxfp4"]
    mxfp4 = next(c for c in the_plan.candidates if c.backend == "transformers/mxfp4")
    assert mxfp4.adjustments[0].startswith("-25: first choice only on Hopper and Blackwell GPUs")
    # On Hopper the same variant keeps its rank.
    hopper = gh.plan("20b", load_fixture("h100"), backend="transformers")
    assert not next(c for c in hopper.candidates if c.backend == "transformers/mxfp4").adjustments
