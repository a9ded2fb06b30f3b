"""`gptoss-hub pull`, `list`, `rm` and `ps`: models on disk (a fake Hugging Face cache and a loopback Hub) and
what a running server reports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fake_hub import fake_hub
from huggingface_hub import constants

from gptoss_hub.errors import DiskSpaceError, InvalidRequestError, ModelNotFoundError
from gptoss_hub.local_models import list_models, plan_pull, pull, remove_model
from gptoss_hub.released import released_config
from gptoss_hub.testing.sparse import write_sparse_checkpoint, write_sparse_gguf

#: A small gpt-oss config (the released one at the tiny checkpoints' width, a short vocabulary, float32), so
#: its files are a few MB.
SMALL = {key: value for key, value in released_config("20b", layers=2).items() if key != "quantization_config"} | {
    "hidden_size": 64,
    "intermediate_size": 64,
    "head_dim": 64,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "num_local_experts": 4,
    "num_experts_per_tok": 2,
    "vocab_size": 1024,
    "torch_dtype": "float32",
}


@pytest.fixture
def repos(tmp_path):
    """A checkpoint repo (with the original weights and a GGUF beside, which no safetensors backend loads) and
    a GGUF repo with two quantizations."""
    folder = write_sparse_checkpoint(SMALL, tmp_path / "src" / "checkpoint")
    original = tmp_path / "src" / "original.bin"
    original.write_bytes(b"\0" * 1000)
    tokenizer = tmp_path / "src" / "tokenizer.json"
    tokenizer.write_text("{}")
    f32 = write_sparse_gguf(SMALL, tmp_path / "src" / "gpt-oss-small-f32.gguf")
    mxfp4 = write_sparse_gguf(SMALL, tmp_path / "src" / "gpt-oss-small-mxfp4.gguf")
    return {
        "someorg/gpt-oss-small": {
            "config.json": folder / "config.json",
            "model.safetensors": folder / "model.safetensors",
            "tokenizer.json": tokenizer,
            "original/model.bin": original,
            "gpt-oss-small-f32.gguf": f32,
        },
        "someorg/gpt-oss-small-GGUF": {"gpt-oss-small-f32.gguf": f32, "gpt-oss-small-mxfp4.gguf": mxfp4},
    }


@pytest.fixture
def hub(repos, tmp_path, monkeypatch):
    """The loopback Hub serving `repos`, with huggingface_hub pointed at it and at an empty cache."""
    cache = tmp_path / "hf-cache"
    monkeypatch.setattr(constants, "ENDPOINT", "")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("GPTOSS_HUB_CACHE", str(tmp_path / "hub-cache"))
    with fake_hub(repos) as (served, endpoint):
        monkeypatch.setattr(constants, "ENDPOINT", endpoint)
        monkeypatch.setattr(
            constants, "HUGGINGFACE_CO_URL_TEMPLATE", endpoint + "/{repo_id}/resolve/{revision}/{filename}"
        )
        yield served, endpoint, cache


def test_pull_fetches_exactly_the_checkpoint_files_a_safetensors_backend_loads(hub):
    served, _, cache = hub
    pull_plan = plan_pull("someorg/gpt-oss-small", backend="transformers/cpu")
    assert pull_plan.backend == "transformers/cpu"
    assert [name for name, _ in pull_plan.files] == ["config.json", "model.safetensors", "tokenizer.json"]
    assert pull_plan.missing_bytes == sum(size for _, size in pull_plan.files) > 0
    folder = pull(pull_plan)
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors", "tokenizer.json"]
    downloads = [request for request in served.requests if "/resolve/" in request]
    assert downloads and not any("original/" in r or r.endswith(".gguf") for r in downloads)
    assert str(folder).startswith(str(cache))
    # Pulled once, nothing is missing any more, and the model is listed with what can run it here.
    assert plan_pull("someorg/gpt-oss-small", backend="transformers/cpu").missing_bytes == 0
    (listed,) = [m for m in list_models() if m.cache == "hugging face"]
    assert (listed.name, listed.format) == ("someorg/gpt-oss-small", "safetensors, float32")
    assert "transformers/cpu" in listed.runs_on and listed.size_bytes >= pull_plan.files[1][1]


def test_pull_for_llamacpp_fetches_one_gguf(hub):
    pull_plan = plan_pull("someorg/gpt-oss-small-GGUF", backend="llamacpp")
    assert pull_plan.backend == "llamacpp/cpu"
    assert [name for name, _ in pull_plan.files] == ["gpt-oss-small-mxfp4.gguf"]
    folder = pull(pull_plan)
    assert [p.name for p in folder.iterdir()] == ["gpt-oss-small-mxfp4.gguf"]
    (listed,) = [m for m in list_models() if m.cache == "hugging face"]
    assert listed.format == "GGUF, mxfp4" and listed.runs_on == ("llamacpp/cpu",)


def test_pull_refuses_what_the_disk_cannot_hold(hub, monkeypatch):
    import shutil

    from gptoss_hub import local_models

    monkeypatch.setattr(local_models.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**9, 10**9, 1000))
    with pytest.raises(
        DiskSpaceError, match=r"needs 0\.\d\d GiB more for transformers/cpu, but the disk of .* has 0\.00 GiB free"
    ):
        plan_pull("someorg/gpt-oss-small", backend="transformers/cpu")
    assert not any("resolve" in request for request in hub[0].requests)  # nothing was downloaded


def test_pull_of_an_unknown_repo_or_without_a_network_says_so(hub, monkeypatch):
    with pytest.raises(ModelNotFoundError, match="Hugging Face has no repository 'someorg/missing'"):
        plan_pull("someorg/missing", backend="transformers/cpu")
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    with pytest.raises(ModelNotFoundError, match="could not be reached"):
        plan_pull("someorg/gpt-oss-small", backend="transformers/cpu")


def test_pull_of_a_local_model_has_nothing_to_download(tmp_path):
    with pytest.raises(InvalidRequestError, match="a local folder: there is nothing to download"):
        plan_pull(str(tmp_path))
    with pytest.raises(InvalidRequestError, match="reference checkpoint"):
        plan_pull("tiny")


def test_list_and_rm_cover_both_caches_and_leave_other_models_alone(offline_hub, tmp_path):
    folder = write_sparse_checkpoint(SMALL, tmp_path / "src" / "small")
    llama = tmp_path / "src" / "llama-config.json"
    llama.write_text(json.dumps({"model_type": "llama"}))
    env = offline_hub("someorg/gpt-oss-small", {p.name: p for p in folder.iterdir()})
    offline_hub("someorg/llama", {"config.json": llama, "model.safetensors": folder / "model.safetensors"})
    hub_cache = tmp_path / "hub-cache"
    (hub_cache / "checkpoints").mkdir(parents=True)
    write_sparse_gguf(SMALL, hub_cache / "checkpoints" / "small-mxfp4.gguf")
    env = {**env, "GPTOSS_HUB_CACHE": str(hub_cache), "COLUMNS": "200"}

    def gptoss_hub(*arguments: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "gptoss_hub.cli.main", *arguments]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)

    listed = gptoss_hub("list", "--json")
    assert listed.returncode == 0, listed.stderr
    entries = {entry["name"]: entry for entry in json.loads(listed.stdout)}
    assert set(entries) == {"someorg/gpt-oss-small", "small-mxfp4.gguf"}  # the llama repo is not gpt-oss
    assert entries["small-mxfp4.gguf"]["format"] == "GGUF, mxfp4"
    assert entries["small-mxfp4.gguf"]["runs_on"] == ["llamacpp/cpu"]
    assert "transformers/cpu" in entries["someorg/gpt-oss-small"]["runs_on"]

    unconfirmed = gptoss_hub("rm", "someorg/gpt-oss-small")
    assert (
        unconfirmed.returncode == 2
        and "needs a confirmation: run it in a terminal, or pass --yes" in unconfirmed.stderr
    )
    unknown = gptoss_hub("rm", "someorg/nothing", "--yes")
    assert unknown.returncode == 2 and "No cached gpt-oss model named 'someorg/nothing'" in unknown.stderr
    removed = gptoss_hub("rm", "someorg/gpt-oss-small", "--yes")
    assert removed.returncode == 0, removed.stderr
    assert "deleted someorg/gpt-oss-small" in removed.stdout
    assert not (Path(env["HF_HUB_CACHE"]) / "models--someorg--gpt-oss-small").exists()
    assert (Path(env["HF_HUB_CACHE"]) / "models--someorg--llama").exists()
    gone = gptoss_hub("rm", "small-mxfp4.gguf", "--yes")
    assert gone.returncode == 0 and not (hub_cache / "checkpoints" / "small-mxfp4.gguf").exists()
    assert json.loads(gptoss_hub("list", "--json").stdout) == []
    assert "No gpt-oss models on this disk yet" in gptoss_hub("list").stdout


def test_list_says_why_nothing_can_run_a_model(monkeypatch, tmp_path):
    hub_cache = tmp_path / "hub-cache"
    write_sparse_checkpoint(released_config("120b"), hub_cache / "checkpoints" / "big-tune")
    monkeypatch.setenv("GPTOSS_HUB_CACHE", str(hub_cache))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty"))
    (big,) = list_models()
    assert big.name == "big-tune" and big.format == "safetensors, MXFP4 experts" and not big.runs_on
    assert big.why_not is not None and "GiB" in big.why_not
    with pytest.raises(ModelNotFoundError, match=r"Cached: big-tune"):
        remove_model("other")


def test_ps_reports_a_running_server_and_says_when_none_runs(tmp_path):
    from loopback import serving_hub

    env = dict(os.environ)

    def ps(*arguments: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "gptoss_hub.cli.main", "ps", *arguments]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)

    with serving_hub(["--model", "tiny", "--backend", "echo"], tmp_path / "serve.log", start_seconds=120) as (_, base):
        shown = ps("--url", base, "--json")
        assert shown.returncode == 0, shown.stderr
        status = json.loads(shown.stdout)
        assert (status["backend"], status["status"], status["requests_in_progress"]) == ("echo", "ready", 0)
        assert status["model"] == "tiny-harmony" and status["resident_bytes"] > 10 * 2**20
        table = ps("--url", base + "/v1")
        assert table.returncode == 0 and "echo" in table.stdout and "tiny-harmony" in table.stdout
    nothing = ps("--url", base)
    assert nothing.returncode == 2 and "No gptoss-hub server answers at" in nothing.stderr
