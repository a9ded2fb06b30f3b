import hashlib

import pytest

from gptoss_hub import encoding


def test_cache_gets_verified_vocabulary(tmp_path, monkeypatch):
    monkeypatch.delenv("TIKTOKEN_ENCODINGS_BASE", raising=False)
    monkeypatch.setenv("GPTOSS_HUB_CACHE", str(tmp_path))
    folder = encoding.ensure_encodings_base()
    data = (folder / "o200k_base.tiktoken").read_bytes()
    assert folder == tmp_path / "tiktoken"
    assert hashlib.sha256(data).hexdigest() == encoding.O200K_BASE_SHA256
    import os

    assert os.environ["TIKTOKEN_ENCODINGS_BASE"] == str(folder)


def test_corrupt_cached_file_is_replaced(tmp_path, monkeypatch):
    monkeypatch.delenv("TIKTOKEN_ENCODINGS_BASE", raising=False)
    monkeypatch.setenv("GPTOSS_HUB_CACHE", str(tmp_path))
    (tmp_path / "tiktoken").mkdir()
    (tmp_path / "tiktoken" / "o200k_base.tiktoken").write_bytes(b"garbage")
    folder = encoding.ensure_encodings_base()
    assert hashlib.sha256((folder / "o200k_base.tiktoken").read_bytes()).hexdigest() == encoding.O200K_BASE_SHA256


def test_user_setting_is_never_overridden(tmp_path, monkeypatch):
    monkeypatch.setenv("TIKTOKEN_ENCODINGS_BASE", str(tmp_path / "mine"))
    monkeypatch.setenv("GPTOSS_HUB_CACHE", str(tmp_path / "cache"))
    assert encoding.ensure_encodings_base() == tmp_path / "mine"
    assert not (tmp_path / "cache").exists()


def test_tampered_bundle_is_a_typed_error(monkeypatch):
    monkeypatch.setattr(encoding, "_sha256", lambda data: "0" * 64)
    with pytest.raises(encoding.TokenizerError, match="sha256"):
        encoding._bundled_vocabulary()


def test_harmony_encoding_loads_offline_with_special_tokens():
    enc = encoding.harmony_encoding()
    assert enc.encode("<|start|><|call|><|return|>", allowed_special="all") == [200006, 200012, 200002]
    assert sorted(enc.stop_tokens_for_assistant_actions()) == [200002, 200012]
