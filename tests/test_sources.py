import pytest

from gptoss_hub.errors import ModelNotFoundError
from gptoss_hub.sources import resolve_model


def test_aliases_and_forms(tmp_path):
    assert resolve_model("20b").repo_id == "openai/gpt-oss-20b"
    assert resolve_model("120B").repo_id == "openai/gpt-oss-120b"
    assert resolve_model("tiny").kind == "reference" and resolve_model("tiny").name == "tiny-harmony"
    assert resolve_model("tiny-random").name == "tiny-random"
    assert resolve_model("http://host:8000/v1/").url == "http://host:8000/v1"
    pinned = resolve_model("someorg/gpt-oss-20b-finetune@abc123")
    assert (pinned.repo_id, pinned.revision) == ("someorg/gpt-oss-20b-finetune", "abc123")
    assert resolve_model(tmp_path).kind == "local_dir"
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    assert resolve_model(gguf).kind == "gguf_file"


def test_unresolvable_models_are_typed_errors(tmp_path):
    (tmp_path / "weights.bin").write_bytes(b"")
    with pytest.raises(ModelNotFoundError, match=r"not a \.gguf"):
        resolve_model(tmp_path / "weights.bin")
    with pytest.raises(ModelNotFoundError, match="alias"):
        resolve_model("./no/such/folder")


def test_offline_download_says_what_to_do(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelNotFoundError, match="HF_HUB_OFFLINE"):
        resolve_model("openai/gpt-oss-20b").local_dir()
