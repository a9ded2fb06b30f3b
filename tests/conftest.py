"""Shared fixtures: one loaded tiny model per test session (loading and building are the slow parts)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_model():
    """The trained tiny-harmony checkpoint on the transformers CPU backend."""
    import gptoss_hub as gh

    model = gh.load("tiny", backend="transformers")
    yield model
    model.close()


@pytest.fixture(scope="session")
def echo_model():
    """The echo backend from the test plugin package (no runtime behind it)."""
    import gptoss_hub as gh

    model = gh.load("tiny", backend="echo")
    yield model
    model.close()


@pytest.fixture(scope="session")
def llamacpp_model():
    """The trained tiny-harmony checkpoint, exported to GGUF f32, on the llama.cpp backend."""
    pytest.importorskip("llama_cpp", reason="the llamacpp extra is installed by .ci/run")
    import gptoss_hub as gh

    model = gh.load("tiny", backend="llamacpp", n_threads=1)
    yield model
    model.close()


@pytest.fixture
def offline_hub(tmp_path):
    """`add(repo_id, files)` puts `files` ({name: source path}) in a Hugging Face cache under `tmp_path` as
    the repo's `main` revision and returns the environment in which a subprocess reads that cache offline."""
    hub = tmp_path / "hub"

    def add(repo_id: str, files: dict[str, Path]) -> dict[str, str]:
        commit = "0" * 40
        repo = hub / f"models--{repo_id.replace('/', '--')}"
        snapshot = repo / "snapshots" / commit
        snapshot.mkdir(parents=True)
        for name, source in files.items():
            os.link(source, snapshot / name)  # hard links: the checkpoints are large and read-only here
        (repo / "refs").mkdir()
        (repo / "refs" / "main").write_text(commit)
        return {**os.environ, "HF_HUB_CACHE": str(hub), "HF_HUB_OFFLINE": "1"}

    return add
