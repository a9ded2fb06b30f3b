"""The transformers GPU variants on recorded machines: what each checks, the exact `from_pretrained` arguments it
passes, its messages when triton, triton_kernels or a Hub kernel is missing, fallback, and tensor parallel.

Nothing here needs a GPU: the loading steps that touch one (`gpu_runtime`) are replaced where a test loads.
"""

from __future__ import annotations

import json
import warnings
from types import SimpleNamespace

import pytest
from gptoss_hub.backends.transformers import GPU_BACKENDS, gpu_runtime
from gptoss_hub.backends.transformers.gpu_loading import VariantFallbackWarning, load_gpu_engine
from gptoss_hub.backends.transformers.pretrained_kwargs import GpuOptions, from_pretrained_kwargs
from gptoss_hub.backends.transformers.variants import GPU_VARIANTS, hub_kernels
from gptoss_hub.hardware import RuntimeBuild, fixture_names, load_fixture
from gptoss_hub.hardware.collect import probe_host
from gptoss_hub.hardware.recorded import RecordedHost, recorded_machine

import gptoss_hub as gh
from gptoss_hub.cli.main import main
from gptoss_hub.engine import LoadRequest
from gptoss_hub.errors import BackendError, BackendUnavailableError, InvalidRequestError
from gptoss_hub.sources import ModelSpec, resolve_model

VARIANTS = {variant.name.removeprefix("transformers/"): variant for variant in GPU_VARIANTS}
FA3, MXFP4, MEGABLOCKS, BF16 = (VARIANTS[n] for n in ("mxfp4+fa3", "mxfp4", "megablocks-bf16", "bf16"))
DEQUANTIZE_FITS_H100 = (
    "without the MXFP4 kernels transformers dequantizes the experts to bf16: openai/gpt-oss-20b then needs about "
    "43 GiB with a 8192-token context, which fits in the 79 GiB free (the bf16 variants load it so on purpose)."
)


def _without(report, *runtimes):
    return report.model_copy(
        update={
            "runtimes": {k: v for k, v in report.runtimes.items() if k not in runtimes},
            "runtime_builds": {k: v for k, v in report.runtime_builds.items() if k not in runtimes},
        }
    )


def _with(report, name, version, **build):
    return report.model_copy(
        update={
            "runtimes": {**report.runtimes, name: version},
            "runtime_builds": {
                **report.runtime_builds,
                name: RuntimeBuild(distribution=name, version=version, **build),
            },
        }
    )


def _spec(model="20b", context=8192):
    return resolve_model(model).model_copy(update={"context_tokens": context})


def _plain(kwargs):
    """The kwargs with `Mxfp4Config` reduced to what it says, so dictionaries compare."""
    quantization = kwargs.get("quantization_config")
    if quantization is None:
        return kwargs
    assert type(quantization).__name__ == "Mxfp4Config"
    return {**kwargs, "quantization_config": {"mxfp4": True, "dequantize": quantization.dequantize}}


MXFP4_KERNELS = {"mxfp4": True, "dequantize": False}
DEQUANTIZED = {"mxfp4": True, "dequantize": True}
FA3_ATTENTION = "kernels-community/vllm-flash-attn3"


def _expected(variant, device_map):
    return {
        "device_map": device_map,
        "dtype": "bfloat16",
        "quantization_config": MXFP4_KERNELS if variant.weights == "mxfp4" else DEQUANTIZED,
        "attn_implementation": variant.attention,
        "use_kernels": variant.use_kernels,
    }


#: (fixture, model) -> the GPU variants that can run it there and the device_map each passes.
VIABLE = {
    ("h100", "20b"): {FA3: "cuda", MXFP4: "cuda", MEGABLOCKS: "cuda", BF16: "cuda"},
    ("2x-h100", "20b"): {FA3: "cuda", MXFP4: "cuda", MEGABLOCKS: "cuda", BF16: "cuda"},
    ("8x-h100", "20b"): {FA3: "cuda", MXFP4: "cuda", MEGABLOCKS: "cuda", BF16: "cuda"},
    # 120b: MXFP4 fits one H100; bf16 (240 GiB) needs the layers spread over the GPUs.
    ("h100", "120b"): {FA3: "cuda", MXFP4: "cuda"},
    ("8x-h100", "120b"): {FA3: "cuda", MXFP4: "cuda", MEGABLOCKS: "auto", BF16: "auto"},
    ("8x-h100-vllm", "20b"): {FA3: "cuda", MXFP4: "cuda", MEGABLOCKS: "cuda", BF16: "cuda"},
    ("8x-h100-vllm", "120b"): {FA3: "cuda", MXFP4: "cuda", MEGABLOCKS: "auto", BF16: "auto"},
    ("b200", "20b"): {MXFP4: "cuda", MEGABLOCKS: "cuda", BF16: "cuda"},
    ("rtx-pro-6000", "20b"): {MXFP4: "cuda", MEGABLOCKS: "cuda", BF16: "cuda"},
    ("h200", "20b"): {BF16: "cuda"},  # no `kernels` package there
    ("h200-real", "20b"): {BF16: "cuda"},  # likewise; transformers 5.17.0
    ("mi300x", "20b"): {BF16: "cuda"},
    ("mi300x-kfd", "20b"): {BF16: "cuda"},
    # 20b in bf16 (about 48 GB) does not fit 40 GB; MXFP4 through triton kernels (sm_80) does.
    ("a100-40gb", "20b"): {MXFP4: "cuda"},
    **{(name, "20b"): {} for name in ("cpu-only", "m3-max", "nvidia-driver-broken", "rtx-4090", "rtx-5090", "t4")},
    ("rx-7900-xtx", "20b"): {},
}


@pytest.mark.parametrize(("fixture", "model"), sorted(VIABLE))
def test_each_variant_passes_exact_from_pretrained_kwargs_on_recorded_machines(fixture, model):
    report, spec = load_fixture(fixture), _spec(model)
    viable = {backend.variant for backend in GPU_BACKENDS if not backend().check(report, spec)}
    assert viable == set(VIABLE[fixture, model])
    for variant, device_map in VIABLE[fixture, model].items():
        kwargs = from_pretrained_kwargs(variant, spec, report, GpuOptions())
        assert _plain(kwargs) == _expected(variant, device_map)


def test_every_recorded_machine_is_in_the_table():
    assert {fixture for fixture, _ in VIABLE} == set(fixture_names())


@pytest.mark.parametrize(
    ("fixture", "chosen"),
    [
        ("h100", "transformers/mxfp4+fa3"),
        ("2x-h100", "transformers/mxfp4+fa3"),
        ("b200", "transformers/mxfp4"),
        ("rtx-pro-6000", "transformers/mxfp4"),
        ("h200", "transformers/bf16"),
        ("mi300x", "transformers/bf16"),
        ("a100-40gb", "transformers/mxfp4"),  # bf16 does not fit 40 GB
        ("rtx-4090", "transformers/cpu"),
    ],
)
def test_dispatch_follows_the_launch_recommendations(fixture, chosen):
    assert gh.plan("20b", load_fixture(fixture), backend="transformers").chosen.backend == chosen


def test_a_bf16_checkpoint_gets_no_quantization_config_on_bf16_variants():
    report, spec = load_fixture("h100"), _spec()
    kwargs = from_pretrained_kwargs(BF16, spec, report, GpuOptions(device="cuda:0"), mxfp4_checkpoint=False)
    assert kwargs == {"device_map": "cuda:0", "dtype": "bfloat16", "attn_implementation": "eager", "use_kernels": False}
    # An MXFP4 variant quantizes a bf16 checkpoint on load rather than falling back to bf16.
    mxfp4 = from_pretrained_kwargs(MXFP4, spec, report, GpuOptions(), mxfp4_checkpoint=False)
    assert _plain(mxfp4)["quantization_config"] == MXFP4_KERNELS


# --- what is missing, in exact words ---------------------------------------------------------------------


def test_missing_triton_rules_out_mxfp4_and_shows_the_bf16_memory():
    report = _without(load_fixture("h100"), "triton")
    assert GPU_BACKENDS[0]().check(report, _spec()) == [
        "triton is not installed; transformers' MXFP4 kernels need triton >= 3.4: pip install 'triton>=3.4'.",
        DEQUANTIZE_FITS_H100,
    ]
    assert not GPU_BACKENDS[3]().check(report, _spec())  # transformers/bf16 needs no triton


def test_old_triton_and_missing_kernels_on_an_rtx_5090():
    reasons = GPU_BACKENDS[1]().check(load_fixture("rtx-5090"), _spec())
    assert reasons == [
        "triton 3.3.1 is installed; transformers' MXFP4 kernels need triton >= 3.4: pip install -U 'triton>=3.4' "
        "(torch 2.8 and later bring it).",
        "the `kernels` package is not installed; transformers 4.56.1 fetches the MXFP4 MoE kernels of triton_kernels "
        "from kernels-community/triton_kernels on the Hugging Face Hub through it: pip install kernels.",
        "without the MXFP4 kernels transformers dequantizes the experts to bf16: openai/gpt-oss-20b then needs about "
        "43 GiB with a 8192-token context, more than the 31 GiB free on NVIDIA GeForce RTX 5090.",
    ]


def test_missing_triton_kernels_package_for_transformers_before_4_56():
    report = _with(load_fixture("h100"), "transformers", "4.55.0")
    reasons = GPU_BACKENDS[1]().check(report, _spec())
    assert reasons == [
        "triton_kernels is not installed; transformers 4.55.0 takes the MXFP4 MoE kernels from it: pip install "
        "'triton_kernels @ git+https://github.com/triton-lang/triton.git@v3.4.0#subdirectory=python/triton_kernels', "
        "or upgrade transformers (4.56 and later fetch them with `kernels`).",
        DEQUANTIZE_FITS_H100,
    ]
    assert not GPU_BACKENDS[1]().check(_with(report, "triton_kernels", "1.0.0"), _spec())


def test_missing_kernels_package_names_every_hub_kernel():
    reasons = GPU_BACKENDS[0]().check(load_fixture("h200"), _spec())
    assert reasons[0] == (
        "the `kernels` package is not installed; transformers 4.56.1 fetches the MXFP4 MoE kernels of triton_kernels "
        "from kernels-community/triton_kernels and Flash-Attention-3 with attention sinks from "
        "kernels-community/vllm-flash-attn3 on the Hugging Face Hub through it: pip install kernels."
    )
    megablocks = GPU_BACKENDS[2]().check(load_fixture("mi300x"), _spec())
    assert megablocks == [
        "the `kernels` package is not installed; transformers 4.56.1 fetches the MegaBlocks MoE kernels from "
        "kernels-community/megablocks on the Hugging Face Hub through it: pip install kernels."
    ]


def test_offline_without_the_kernel_repositories_in_the_cache():
    h100 = load_fixture("h100")
    offline = _with(h100, "kernels", "0.10.1", offline=True, cached_repos=("kernels-community/vllm-flash-attn3",))
    assert GPU_BACKENDS[0]().check(offline, _spec()) == [
        "HF_HUB_OFFLINE is set and kernels-community/triton_kernels, the MXFP4 MoE kernels of triton_kernels, is not "
        'in the kernel cache: fetch it once while online (python -c "from kernels import get_kernel; '
        "get_kernel('kernels-community/triton_kernels')\"), or unset HF_HUB_OFFLINE.",
        DEQUANTIZE_FITS_H100,
    ]
    # transformers 5 pins the kernels to a major version and renamed the MXFP4 one.
    newer = _with(offline, "transformers", "5.19.0")
    assert (
        "get_kernel('kernels-community/gpt-oss-triton-kernels', version=1)"
        in GPU_BACKENDS[0]().check(newer, _spec())[0]
    )
    cached = ("kernels-community/triton_kernels", "kernels-community/vllm-flash-attn3")
    assert not GPU_BACKENDS[0]().check(_with(h100, "kernels", "0.10.1", offline=True, cached_repos=cached), _spec())


def test_wrong_gpu_stops_before_the_software():
    assert GPU_BACKENDS[0]().check(load_fixture("b200"), _spec()) == [
        "transformers/mxfp4+fa3 needs a Hopper GPU (H100, H200: compute capability 9.0); this machine has "
        "NVIDIA B200 (compute capability 10.0)."
    ]
    assert GPU_BACKENDS[3]().check(load_fixture("t4"), _spec()) == [
        "transformers/bf16 computes in bf16, which Tesla T4 (compute capability 7.5) cannot do natively (NVIDIA "
        "compute capability 8.0 or newer, or AMD CDNA or RDNA3, can); use llamacpp with a GGUF file."
    ]
    cpu_torch = _with(load_fixture("h100"), "torch", "2.8.0+cpu", devices=("cpu",))
    assert GPU_BACKENDS[3]().check(cpu_torch, _spec()) == [
        "torch 2.8.0+cpu is a cpu build; transformers/bf16 needs torch built for CUDA: "
        "pip install torch --index-url https://download.pytorch.org/whl/cu128."
    ]


def test_memory_counts_the_weights_the_variant_really_loads_and_the_context():
    h100 = load_fixture("h100")
    assert not GPU_BACKENDS[0]().check(h100, _spec("120b"))
    assert GPU_BACKENDS[3]().check(h100, _spec("120b")) == [
        "openai/gpt-oss-120b needs about 240 GiB in bf16 with a 8192-token context; NVIDIA H100 80GB HBM3 has 79 GiB free."
    ]
    # The KV cache of gpt-oss is small (half its layers keep 128 tokens): the full 131072-token context fits...
    assert not GPU_BACKENDS[0]().check(h100, _spec("120b", context=131_072))
    # ...and a context far beyond it does not.
    assert GPU_BACKENDS[0]().check(h100, _spec("120b", context=1_000_000)) == [
        "openai/gpt-oss-120b needs about 105 GiB in MXFP4 with a 1000000-token context; NVIDIA H100 80GB HBM3 has 79 "
        "GiB free."
    ]


def test_the_kernels_cache_and_offline_mode_are_read_from_the_machine():
    recorded = recorded_machine("h100")
    snapshot = "/root/.cache/huggingface/hub/models--kernels-community--vllm-flash-attn3/snapshots/0123abcd"
    machine = recorded.model_copy(
        update={
            "env": {"HOME": "/root", "HF_HUB_OFFLINE": "1"},
            "files": {
                **recorded.files,
                f"{snapshot}/build/torch28-cxx11-cu128-x86_64-linux/__init__.py": "",
                "/root/.cache/huggingface/hub/models--openai--gpt-oss-20b/snapshots/aa/config.json": "{}",
            },
        }
    )
    report = probe_host(RecordedHost(machine, "h100-offline"))
    kernels = report.runtime_builds["kernels"]
    assert (kernels.offline, kernels.cached_repos) == (True, ("kernels-community/vllm-flash-attn3",))
    assert load_fixture("h100").runtime_builds["kernels"].offline is False
    the_plan = gh.plan("20b", report, backend="transformers")
    assert the_plan.chosen.backend == "transformers/bf16"  # the MXFP4 and MegaBlocks kernels are not cached
    assert "kernels-community/triton_kernels" in the_plan.candidates[0].reasons[0]


# --- the plan, from the command line ---------------------------------------------------------------------


def test_plan_20b_on_h100_shows_mxfp4_with_fa3_first(capsys):
    assert main(["plan", "20b", "--hardware", "h100"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2].strip() == "-> transformers/mxfp4+fa3 (rank 100)"


def test_plan_without_triton_says_why_mxfp4_is_out_and_what_the_fallback_needs(capsys, tmp_path):
    saved = tmp_path / "h100-no-triton.json"
    saved.write_text(_without(load_fixture("h100"), "triton").model_dump_json())
    assert main(["plan", "20b", "--hardware", str(saved), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    reasons = {c["backend"]: c["reasons"] for c in data["candidates"]}
    assert data["chosen"] == "transformers/megablocks-bf16"
    assert reasons["transformers/mxfp4"][0].startswith("triton is not installed")
    assert reasons["transformers/mxfp4"][1] == DEQUANTIZE_FITS_H100
    assert main(["plan", "20b", "--hardware", "rtx-5090", "--backend", "transformers/mxfp4"]) == 1
    out = " ".join(capsys.readouterr().out.split())  # the plan is wrapped to the terminal's width
    assert "triton 3.3.1 is installed" in out and "needs about 43 GiB" in out


# --- tensor parallel -------------------------------------------------------------------------------------


def test_tp_plan_auto_under_torchrun_passes_tp_plan_and_no_device_map():
    report, spec = load_fixture("2x-h100"), _spec("120b")
    kwargs = from_pretrained_kwargs(FA3, spec, report, GpuOptions(tp_plan="auto"), world_size=2)
    assert _plain(kwargs) == {
        "tp_plan": "auto",
        "dtype": "bfloat16",
        "quantization_config": MXFP4_KERNELS,
        "attn_implementation": FA3_ATTENTION,
        "use_kernels": False,
    }


def test_tp_plan_without_torchrun_says_how_to_launch(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    report, spec = load_fixture("2x-h100"), resolve_model("120b")
    expected = (
        "tp_plan='auto' shards the model over several GPUs, one process per GPU, and this process is not one of "
        "several started by torchrun (WORLD_SIZE is unset or 1). Launch it with `torchrun --nproc-per-node 2 "
        "your_script.py` (or `torchrun --nproc-per-node 2 -m your_module`), or leave tp_plan unset to spread the "
        "layers over the GPUs from one process."
    )
    with pytest.raises(InvalidRequestError) as error:
        GPU_BACKENDS[0]().load(LoadRequest.of(spec, report, device=None, tp_plan="auto"))
    assert str(error.value) == expected
    monkeypatch.setenv("WORLD_SIZE", "4")
    with pytest.raises(InvalidRequestError, match=r"torchrun started 4 processes .* has 2 GPUs"):
        GPU_BACKENDS[0]().load(LoadRequest.of(spec, report, device=None, tp_plan="auto"))
    with pytest.raises(InvalidRequestError, match="leave device unset with tp_plan"):
        GPU_BACKENDS[0]().load(LoadRequest.of(spec, report, device="cuda:0", tp_plan="auto"))
    with pytest.raises(
        InvalidRequestError, match="Accepted: tp_plan, fallback; and on every backend device= and max_context="
    ):
        GPU_BACKENDS[0]().load(LoadRequest.of(spec, report, tp_plan="rowwise"))


# --- loading, with the GPU steps replaced ----------------------------------------------------------------


class FakeModel:
    """What the loader and engine read from a loaded model."""

    def __init__(self, mxfp4_experts=True, attention="eager", use_kernels=False, device_map=None):
        import torch

        self.device, self.dtype = torch.device("cpu"), torch.bfloat16
        self.config = SimpleNamespace(max_position_embeddings=4096, _attn_implementation=attention)
        self.use_kernels = use_kernels
        self.hf_device_map = device_map or {"": 0}
        self._experts = [type("Mxfp4GptOssExperts" if mxfp4_experts else "GptOssExperts", (), {})()]

    def modules(self):
        return iter(self._experts)

    def eval(self):
        return self


@pytest.fixture
def gpu_steps(monkeypatch, tmp_path):
    """Replace what needs a GPU: no runtime problems, kernels fetch unless listed in `failing`, and
    `from_pretrained` records its arguments and returns `loaded(variant_kwargs)`."""
    (tmp_path / "config.json").write_text(json.dumps({"quantization_config": {"quant_method": "mxfp4"}}))
    monkeypatch.setattr(ModelSpec, "local_dir", lambda self, **_: tmp_path)
    monkeypatch.setattr(gpu_runtime, "installed_transformers", lambda: "5.19.0")
    monkeypatch.setattr(gpu_runtime, "runtime_problems", lambda variant: [])
    monkeypatch.setattr(gpu_runtime, "release", lambda: None)
    steps = SimpleNamespace(failing={}, fetched=[], calls=[], loaded=None)

    def fetch(kernel):
        steps.fetched.append(kernel.repo_id)
        if kernel.repo_id in steps.failing:
            raise steps.failing[kernel.repo_id]

    def load(folder, kwargs):
        steps.calls.append(_plain(kwargs))
        if steps.loaded is not None:
            return steps.loaded(kwargs)
        return FakeModel(
            mxfp4_experts=kwargs["quantization_config"].dequantize is False,
            attention=kwargs["attn_implementation"],
            use_kernels=kwargs["use_kernels"],
        )

    monkeypatch.setattr(gpu_runtime, "fetch_kernel", fetch)
    monkeypatch.setattr(gpu_runtime, "load_pretrained", load)
    return steps


def test_loads_exactly_the_variant_asked_for(gpu_steps):
    engine = load_gpu_engine(FA3, LoadRequest.of(resolve_model("20b"), load_fixture("h100")))
    assert gpu_steps.fetched == ["kernels-community/gpt-oss-triton-kernels", FA3_ATTENTION]
    assert gpu_steps.calls == [_expected(FA3, "cuda")]
    assert (engine.info.quantization, engine.info.attention) == ("mxfp4 (triton kernels)", FA3_ATTENTION)
    assert engine.info.details["variant"] == "transformers/mxfp4+fa3" and "fallback" not in engine.info.details


def test_a_kernel_that_cannot_be_fetched_is_a_typed_error(gpu_steps):
    gpu_steps.failing[FA3_ATTENTION] = OSError("cannot reach huggingface.co")
    with pytest.raises(BackendUnavailableError) as error:
        load_gpu_engine(FA3, LoadRequest.of(resolve_model("20b"), load_fixture("h100")))
    assert str(error.value) == (
        "transformers/mxfp4+fa3 cannot load openai/gpt-oss-20b: Flash-Attention-3 with attention sinks (Hub kernel "
        "kernels-community/vllm-flash-attn3) could not be fetched or loaded: OSError: cannot reach huggingface.co. "
        'Let this machine reach the Hugging Face Hub, or fetch the kernel once where it can (python -c "from kernels '
        "import get_kernel; get_kernel('kernels-community/vllm-flash-attn3', version=1)\") and copy the cache "
        "(HF_KERNELS_CACHE or HF_HUB_CACHE). Or pass fallback=True to continue on the next transformers GPU variant "
        "that fits in memory."
    )
    assert gpu_steps.calls == []  # nothing was loaded


def test_missing_triton_in_this_process_is_caught_before_transformers_dequantizes(gpu_steps, monkeypatch):
    monkeypatch.setattr(gpu_runtime, "runtime_problems", lambda variant: ["triton >= 3.4 is not importable here."])
    with pytest.raises(BackendUnavailableError, match=r"^transformers/mxfp4 cannot load .*: triton >= 3.4 is not"):
        load_gpu_engine(MXFP4, LoadRequest.of(resolve_model("20b"), load_fixture("b200")))
    assert gpu_steps.calls == []


def test_a_quietly_dequantized_load_is_an_error(gpu_steps):
    gpu_steps.loaded = lambda kwargs: FakeModel(mxfp4_experts=False)
    with pytest.raises(BackendUnavailableError) as error:
        load_gpu_engine(MXFP4, LoadRequest.of(resolve_model("20b"), load_fixture("b200")))
    assert str(error.value) == (
        "transformers/mxfp4 cannot load openai/gpt-oss-20b: transformers loaded the experts dequantized to bf16 "
        "(about three times the memory of MXFP4), because its MXFP4 kernels did not load; its warning above says "
        "which part was missing. Or pass fallback=True to continue on the next transformers GPU variant that fits "
        "in memory."
    )


def test_offloading_to_the_cpu_is_an_error(gpu_steps):
    gpu_steps.loaded = lambda kwargs: FakeModel(mxfp4_experts=False, device_map={"model.layers.0": 0, "lm_head": "cpu"})
    with pytest.raises(BackendUnavailableError, match="part of the model on the cpu because the GPUs could not hold"):
        load_gpu_engine(BF16, LoadRequest.of(resolve_model("20b"), load_fixture("h100")))


def test_transformers_failing_is_a_backend_error(gpu_steps):
    def out_of_memory(kwargs):
        raise RuntimeError("CUDA out of memory")

    gpu_steps.loaded = out_of_memory
    with pytest.raises(BackendError, match=r"transformers failed while loading it: RuntimeError: CUDA out of memory"):
        load_gpu_engine(BF16, LoadRequest.of(resolve_model("20b"), load_fixture("h100")))


def test_fallback_continues_on_the_next_variant_and_says_so(gpu_steps):
    gpu_steps.failing[FA3_ATTENTION] = OSError("offline")
    with pytest.warns(VariantFallbackWarning, match="transformers/mxfp4\\+fa3 was wanted but transformers/mxfp4 is"):
        engine = load_gpu_engine(FA3, LoadRequest.of(resolve_model("20b"), load_fixture("h100"), fallback=True))
    fallback = engine.info.details["fallback"]
    assert (fallback["wanted"], fallback["running"]) == ("transformers/mxfp4+fa3", "transformers/mxfp4")
    assert (
        "kernels-community/vllm-flash-attn3) could not be fetched or loaded: OSError: offline"
        in fallback["why"]["transformers/mxfp4+fa3"]
    )
    assert "fallback=True" not in fallback["why"]["transformers/mxfp4+fa3"]  # no advice to do what was done
    assert engine.info.details["variant"] == "transformers/mxfp4" and engine.info.attention == "eager"
    assert gpu_steps.calls == [_expected(MXFP4, "cuda")]


def test_fallback_from_mxfp4_measures_memory_in_bf16(gpu_steps):
    """120b fits an H100 only in MXFP4: when its kernels fail, the bf16 variants are skipped for memory."""
    gpu_steps.failing["kernels-community/gpt-oss-triton-kernels"] = OSError("offline")
    with pytest.raises(BackendUnavailableError) as error:
        load_gpu_engine(FA3, LoadRequest.of(resolve_model("120b"), load_fixture("h100"), fallback=True))
    message = str(error.value)
    assert message.startswith(
        "transformers/mxfp4+fa3 was asked for with fallback=True, and no transformers GPU variant can load "
        "openai/gpt-oss-120b here:\n  transformers/mxfp4+fa3: "
    )
    bf16 = "openai/gpt-oss-120b needs about 240 GiB in bf16 with a 8192-token context; NVIDIA H100 80GB HBM3 has 79 GiB free."
    assert f"  transformers/megablocks-bf16: {bf16}" in message and f"  transformers/bf16: {bf16}" in message
    assert gpu_steps.calls == []
    # 20b fits in bf16: the MegaBlocks variant runs, dequantizing on purpose.
    with pytest.warns(VariantFallbackWarning):
        engine = load_gpu_engine(FA3, LoadRequest.of(resolve_model("20b"), load_fixture("h100"), fallback=True))
    assert engine.info.details["fallback"]["running"] == "transformers/megablocks-bf16"
    assert engine.info.quantization == "mxfp4 dequantized to bf16"
    assert gpu_steps.calls[-1] == _expected(MEGABLOCKS, "cuda")


def test_without_fallback_a_variant_that_does_not_fit_is_refused_before_loading(gpu_steps):
    with pytest.raises(BackendUnavailableError, match=r"needs about 240 GiB in bf16 .* Or pass fallback=True"):
        load_gpu_engine(BF16, LoadRequest.of(resolve_model("120b"), load_fixture("h100")))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback happened, so no warning either
        load_gpu_engine(BF16, LoadRequest.of(resolve_model("20b"), load_fixture("h100"), device="cuda:0"))
    assert gpu_steps.calls[-1]["device_map"] == "cuda:0"
    with pytest.raises(InvalidRequestError, match=r"device='cuda:1': this machine has 1 GPU transformers/bf16 can"):
        load_gpu_engine(BF16, LoadRequest.of(resolve_model("20b"), load_fixture("h100"), device="cuda:1"))


def test_this_machine_has_no_gpu_for_torch():
    problems = gpu_runtime.runtime_problems(BF16)
    assert len(problems) == 1 and "torch.cuda.is_available() is False" in problems[0]


def test_hub_kernels_follow_the_transformers_release():
    assert [k.repo_id for k in hub_kernels(FA3, "4.56.1")] == [
        "kernels-community/triton_kernels",
        "kernels-community/vllm-flash-attn3",
    ]
    assert [(k.repo_id, k.version) for k in hub_kernels(MEGABLOCKS, "5.19.0")] == [("kernels-community/megablocks", 1)]
    assert [k.repo_id for k in hub_kernels(MXFP4, "4.55.0")] == []  # the triton_kernels package instead
    assert hub_kernels(BF16, "5.19.0") == ()


def test_a_loaded_model_generates_on_its_device(gpu_steps):
    """The engine the GPU variants build runs a real tiny model (loaded on the CPU here) and feeds it on
    the model's device; the ids equal a plain greedy forward loop. (tiny-random: it builds in a second,
    where tiny-harmony trains for a minute, and any weights show the loop is the same.)"""
    import torch
    from transformers import GptOssForCausalLM

    from gptoss_hub.engine import GenerationRequest
    from gptoss_hub.testing import checkpoint_path

    folder = checkpoint_path("tiny-random")
    gpu_steps.loaded = lambda kwargs: GptOssForCausalLM.from_pretrained(folder, attn_implementation="eager")
    engine = load_gpu_engine(BF16, LoadRequest.of(resolve_model("tiny"), load_fixture("h100")))
    assert (engine.info.device, engine.info.details["device_map"]) == ("cpu", "cuda")
    prompt = [200006, 1428, 200008, 12194, 200007, 200006, 173781]
    produced = [
        t
        for chunk in engine.generate(GenerationRequest(prompt_ids=prompt, max_tokens=5, temperature=0))
        for t in chunk.token_ids
    ]
    ids = list(prompt)
    with torch.inference_mode():
        for _ in range(5):
            ids.append(int(engine.model(input_ids=torch.tensor([ids])).logits[0, -1].argmax()))
    assert produced == ids[len(prompt) :]
    engine.close()


def test_load_with_fallback_tries_the_variant_the_plan_rejects(gpu_steps, monkeypatch):
    """`gh.load(backend=..., fallback=True)`: a variant whose check fails (no `kernels` package on this H200)
    is still handed to its `load()`, which continues on the next variant that can run and says so."""
    import gptoss_hub as gh
    from gptoss_hub import loading

    monkeypatch.setattr(loading, "probe", lambda: load_fixture("h200"))
    with pytest.raises(BackendUnavailableError, match="cannot run"):
        gh.load("20b", backend="transformers/mxfp4+fa3")
    assert gpu_steps.calls == []
    with pytest.warns(VariantFallbackWarning, match="transformers/mxfp4\\+fa3 was wanted but transformers/bf16"):
        model = gh.load("20b", backend="transformers/mxfp4+fa3", fallback=True)
    assert model.info.backend == "transformers/bf16"
    assert model.info.fallbacks == ["transformers/mxfp4+fa3 -> transformers/bf16"]
    assert model.info.reasons[0].startswith("transformers/mxfp4+fa3 was asked for with fallback=True: ")
    why = model.info.details["fallback"]["why"]
    assert set(why) == {"transformers/mxfp4+fa3", "transformers/mxfp4", "transformers/megablocks-bf16"}
    assert all("kernels" in reason for reason in why.values())
    assert gpu_steps.calls == [_expected(BF16, "cuda")]
