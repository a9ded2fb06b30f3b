"""Shared fixtures: one loaded tiny model per test session (loading and building are the slow parts)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

#: Fixtures that build (on a fresh machine) or load the trained tiny checkpoint on a real runtime, or take
#: seconds of their own (the conformance kit run over planted faults, a GGUF converted at the real width): a
#: test using one is slow whatever its own marks say, so `pytest -m "not slow"` stays a quick loop that never
#: trains or loads a model.
SLOW_FIXTURES = frozenset(
    {"tiny_model", "llamacpp_model", "mlx_model", "hub_server", "fault_matrix", "small_gguf", "kv2_variant"}
)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


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


@pytest.fixture(scope="session")
def mlx_model():
    """The trained tiny-harmony checkpoint on MLX's CPU build."""
    pytest.importorskip("mlx_lm", reason="the mlx extra is installed by .ci/run")
    import gptoss_hub as gh

    model = gh.load("tiny", backend="mlx/cpu")
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


def _start_uvicorn(app):
    """`app` under uvicorn on a free loopback port, in a thread; returns (server, thread, port)."""
    import uvicorn

    running = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not running.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    return running, thread, running.servers[0].sockets[0].getsockname()[1]


@pytest.fixture(scope="session")
def hub_server(tiny_model):
    """`gptoss-hub serve` in-process: `create_app(tiny_model)` under uvicorn on a free loopback port, with an
    API key. Yields `.url` (ending in /v1) and `.api_key`."""
    pytest.importorskip("fastapi", reason="the server extra is installed by .ci/run")
    from gptoss_hub.server import create_app

    api_key = "test-key"
    running, thread, port = _start_uvicorn(create_app(tiny_model, api_key=api_key))
    yield SimpleNamespace(url=f"http://127.0.0.1:{port}/v1", api_key=api_key)
    running.should_exit = True
    thread.join(10)


@pytest.fixture
def serve_app():
    """`serve_app(app)` runs an ASGI app under uvicorn on loopback until the test ends; returns its base URL."""
    started = []

    def serve(app) -> str:
        running, thread, port = _start_uvicorn(app)
        started.append((running, thread))
        return f"http://127.0.0.1:{port}"

    yield serve
    for running, thread in started:
        running.should_exit = True
        thread.join(10)
