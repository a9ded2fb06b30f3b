"""A Hugging Face `tokenizer.json` for o200k_harmony, generated offline and identical to openai-harmony.

Tests and tiny reference checkpoints need an HF fast tokenizer that gives exactly the ids gpt-oss was
trained with, but the hub must not download `openai/gpt-oss-*` to get one. This module builds it from the
verified `o200k_base.tiktoken` the hub already ships (see `gptoss_hub.encoding`) plus harmony's special
tokens, laid out like the published gpt-oss `tokenizer.json`:

* model: byte-level BPE holding o200k_base's 199,998 ranks as ids and the merges that reproduce
  tiktoken's rank-ordered merging (`ignore_merges`, so a pre-token that is itself in the vocabulary maps
  straight to its id, as tiktoken does);
* pre-tokenizer: `Split(o200k regex, isolated)` then `ByteLevel(add_prefix_space=False, use_regex=False)`;
* decoder: `ByteLevel`;
* added tokens: ids 199,998..201,087, every one `special=True`, named as openai-harmony decodes them.

One deliberate difference from the published gpt-oss tokenizer: it names id 200018 `<|endofprompt|>`
(as tiktoken's o200k_base does), while openai-harmony's o200k_harmony names it `<|reserved_200018|>` and
encodes the text `<|endofprompt|>` as ordinary characters. This file follows harmony, so that both give
the same ids for every text. Harmony also knows `<|reserved_201088|>`, one id past the model's
201,088 embedding rows; it is left out because no gpt-oss checkpoint can embed it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import tempfile
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from gptoss_hub.encoding import FIRST_SPECIAL_ID, VOCAB_SIZE, ensure_encodings_base, harmony_encoding
from gptoss_hub.paths import cache_dir

if TYPE_CHECKING:
    from tokenizers import Tokenizer

__all__ = [
    "BOS_TOKEN",
    "EOS_TOKEN",
    "FIRST_SPECIAL_ID",
    "MODEL_MAX_LENGTH",
    "O200K_PATTERN",
    "PAD_TOKEN",
    "build_tokenizer",
    "special_token_names",
    "tokenizer_json_path",
    "write_tokenizer_files",
]

#: The o200k pre-tokenizer split regex, character for character the `pat_str` of `o200k_base` in
#: tiktoken's `tiktoken_ext/openai_public.py` (openai-harmony compiles the same string).
O200K_PATTERN = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)
#: The special tokens the published gpt-oss `tokenizer_config.json` assigns.
BOS_TOKEN = "<|startoftext|>"
EOS_TOKEN = "<|return|>"
PAD_TOKEN = "<|endoftext|>"
#: gpt-oss's own config says "no limit" with transformers' sentinel int(1e30); a plain large int keeps
#: the JSON readable and still disables truncation warnings.
MODEL_MAX_LENGTH = 131_072

# Bump when the generated layout changes, so stale caches are never reused.
_FORMAT_VERSION = 1
_VOCAB_FILE = "o200k_base.tiktoken"


def _parse_ranks(vocab: bytes) -> dict[bytes, int]:
    """Parse a `.tiktoken` file (`base64(token) rank` per line) without needing the tiktoken package."""
    ranks: dict[bytes, int] = {}
    for line in vocab.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def special_token_names() -> list[str]:
    """Names of ids `FIRST_SPECIAL_ID .. VOCAB_SIZE - 1`, in id order, exactly as openai-harmony decodes them."""
    encoding = harmony_encoding()
    return [encoding.decode([i]) for i in range(FIRST_SPECIAL_ID, VOCAB_SIZE)]


def _version_string(vocab: bytes) -> str:
    # The file depends on the vocabulary (a user may point TIKTOKEN_ENCODINGS_BASE elsewhere), on the
    # special-token names harmony reports, and on this module's layout; all three key the cache.
    digest = hashlib.sha256(vocab).hexdigest()[:16]
    harmony = metadata.version("openai-harmony")
    return f"o200k_harmony-v{_FORMAT_VERSION}-{digest}-harmony{harmony}"


def build_tokenizer(ranks: dict[bytes, int] | None = None) -> Tokenizer:
    """Build the o200k_harmony `tokenizers.Tokenizer` in memory (a few seconds; prefer `tokenizer_json_path`).

    `ranks` defaults to the hub's verified o200k_base. The BPE part comes from transformers'
    `TikTokenConverter`, whose merge extraction (every split `l + r` of a token with both halves in the
    vocabulary, ordered by the rank of the merged token) is what the published gpt-oss tokenizer was made
    with; on 200k tokens it takes about 3 s, so it is used as is rather than rewritten.
    """
    try:
        from tokenizers import AddedToken
        from transformers.convert_slow_tokenizer import TikTokenConverter
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise ImportError(
            "Building the HF tokenizer needs the `transformers` and `tokenizers` packages: "
            "pip install 'gptoss-hub[transformers]'."
        ) from exc

    if ranks is None:
        ranks = _parse_ranks((ensure_encodings_base() / _VOCAB_FILE).read_bytes())
    if sorted(ranks.values()) != list(range(FIRST_SPECIAL_ID)):
        raise ValueError(
            f"o200k_base must hold ranks 0..{FIRST_SPECIAL_ID - 1} exactly once each; got {len(ranks)} tokens."
        )
    loaded = ranks

    class _Converter(TikTokenConverter):
        # TikTokenConverter reads the vocabulary with tiktoken's loader, which is an optional extra and
        # would re-read the file; hand it the ranks already parsed and verified above instead.
        @staticmethod
        def load_tiktoken_bpe(tiktoken_url: str) -> dict[bytes, int]:
            return loaded

    tokenizer = _Converter(vocab_file="<verified o200k_base>", pattern=O200K_PATTERN).converted()

    # Added tokens get the next free ids in the order given, so adding them in id order after the
    # 199,998 BPE ranks puts each at its harmony id; checked below rather than trusted.
    names = special_token_names()
    tokenizer.add_special_tokens(
        [
            AddedToken(name, single_word=False, lstrip=False, rstrip=False, normalized=False, special=True)
            for name in names
        ]
    )
    for offset, name in enumerate(names):
        if tokenizer.token_to_id(name) != FIRST_SPECIAL_ID + offset:
            raise RuntimeError(f"{name} landed on id {tokenizer.token_to_id(name)}, not {FIRST_SPECIAL_ID + offset}")
    if tokenizer.get_vocab_size(with_added_tokens=True) != VOCAB_SIZE:
        raise RuntimeError(f"built {tokenizer.get_vocab_size(with_added_tokens=True)} ids, expected {VOCAB_SIZE}")
    return tokenizer


def tokenizer_json_path() -> Path:
    """Path of the o200k_harmony `tokenizer.json`, generated on first use and cached.

    The file lives at `cache_dir()/tokenizer/<version>/tokenizer.json`, where the version names the
    vocabulary's sha256, the openai-harmony version and this module's layout version. It is written to a
    temporary file and moved into place, so concurrent first uses never see a partial file; later calls
    return the existing file without rebuilding it.
    """
    vocab_path = ensure_encodings_base() / _VOCAB_FILE
    vocab = vocab_path.read_bytes()
    folder = cache_dir() / "tokenizer" / _version_string(vocab)
    target = folder / "tokenizer.json"
    if target.is_file():
        return target

    data = build_tokenizer(_parse_ranks(vocab)).to_str()
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=folder, suffix=".tmp", delete=False) as tmp:
        try:
            tmp.write(data)
        except BaseException:
            # A full disk or an interrupt must not leave a 12 MB orphan next to the cache entry.
            tmp.close()
            os.unlink(tmp.name)
            raise
    os.replace(tmp.name, target)
    return target


def write_tokenizer_files(folder: Path) -> None:
    """Write `tokenizer.json`, `tokenizer_config.json` and `special_tokens_map.json` into `folder`.

    The result loads offline with `transformers.AutoTokenizer.from_pretrained(folder)` as a
    `PreTrainedTokenizerFast` of 201,088 ids, with gpt-oss's bos/eos/pad tokens. No chat template is
    written: the hub renders conversations with openai-harmony, not with Jinja.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(tokenizer_json_path(), folder / "tokenizer.json")
    special_map = {"bos_token": BOS_TOKEN, "eos_token": EOS_TOKEN, "pad_token": PAD_TOKEN}
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": MODEL_MAX_LENGTH,
        "model_input_names": ["input_ids", "attention_mask"],
        "clean_up_tokenization_spaces": False,
        **special_map,
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    (folder / "special_tokens_map.json").write_text(json.dumps(special_map, indent=2) + "\n", encoding="utf-8")
