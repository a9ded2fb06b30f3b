"""The backend plugin template (templates/backend-plugin) passes the conformance kit as it stands."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

TEMPLATE = Path(__file__).resolve().parent.parent / "templates" / "backend-plugin"

pytest.importorskip("llama_cpp", reason="the llamacpp extra is installed by .ci/run")


@pytest.mark.slow
def test_the_template_passes_the_kit_from_its_own_tests(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(TEMPLATE / "src")}
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-o",
        "addopts=",
        str(TEMPLATE / "tests"),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    # Every check runs; the two of capabilities the template does not declare (JSON schema, logprobs) skip.
    assert re.search(r"\b14 passed, 2 skipped\b", done.stdout), done.stdout[-1000:]


def test_the_template_registers_one_backend_through_its_hook(monkeypatch):
    monkeypatch.syspath_prepend(str(TEMPLATE / "src"))
    import gptoss_hub_myruntime as template
    from gptoss_hub.hardware import load_fixture

    from gptoss_hub.plugins import BackendRegistry
    from gptoss_hub.sources import resolve_model

    registry = BackendRegistry()
    template.gptoss_hub_register_backends(registry)
    (backend,) = registry.all()
    assert backend.name == "myruntime" and backend.device == "cpu"
    assert backend.check(load_fixture("cpu-only"), resolve_model("tiny")) == []
    assert backend.check(load_fixture("cpu-only"), resolve_model("20b")) == [
        "myruntime reads GGUF files and the tiny reference models, not a hf_repo."
    ]
