import pytest
from gptoss_hub.hardware import CpuInfo
from pydantic import ValidationError

from gptoss_hub import hardware


def test_probe_reads_this_machine():
    report = hardware.probe()
    assert report.cpu.cores >= 1
    assert report.cpu.ram_total_bytes and report.cpu.ram_total_bytes > 1024**3
    assert "torch" in report.runtimes and "transformers" in report.runtimes
    assert hardware.probe() is report  # cached


def test_probe_takes_injected_detectors_and_is_frozen():
    report = hardware.probe(
        cpu_detector=lambda: CpuInfo(model="Test CPU", cores=64, ram_total_bytes=512 * 1024**3),
        runtime_detector=lambda: {"llama_cpp": "0.3.36"},
    )
    assert report.cpu.model == "Test CPU" and report.runtimes == {"llama_cpp": "0.3.36"}
    assert set(report.rejections) == {"nvidia", "amd", "apple"}
    with pytest.raises(ValidationError):
        report.cpu = CpuInfo()
