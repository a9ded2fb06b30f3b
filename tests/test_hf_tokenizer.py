"""The generated HF o200k_harmony tokenizer gives exactly openai-harmony's ids and decodes back to the text.

The tokenizer is generated once per test session into a temporary hub cache (so the cold path is the
one exercised), then compared with `harmony_encoding().encode(text, allowed_special="all")` through both
`tokenizers.Tokenizer.from_file` and `transformers.AutoTokenizer` loaded offline from a written folder.
"""

from __future__ import annotations

import base64
import json
import random
import time

import pytest

pytest.importorskip("tokenizers")
pytest.importorskip("transformers")

from gptoss_hub.encoding import VOCAB_SIZE, ensure_encodings_base, harmony_encoding
from gptoss_hub.testing import hf_tokenizer

FIRST_SPECIAL = hf_tokenizer.FIRST_SPECIAL_ID

# Names harmony's o200k_harmony gives the ids that carry meaning in gpt-oss prompts.
KNOWN_SPECIALS = {
    199998: "<|startoftext|>",
    199999: "<|endoftext|>",
    200000: "<|reserved_200000|>",
    200002: "<|return|>",
    200003: "<|constrain|>",
    200005: "<|channel|>",
    200006: "<|start|>",
    200007: "<|end|>",
    200008: "<|message|>",
    200012: "<|call|>",
    200018: "<|reserved_200018|>",  # tiktoken's o200k_base and the published gpt-oss call it <|endofprompt|>
    201087: "<|reserved_201087|>",
}

SCRIPTS = [
    "Ça va? Élève, naïve façade, crème brûlée, Ångström, São Paulo, Dvořák, Łódź, straße ÆØÅ",
    "Привет, мир! Съешь же ещё этих мягких французских булок. ЁЛКА",
    "Καλημέρα κόσμε· ΑΒΓΔ ἀρχή ὁδός",
    "مرحبا بالعالم، كيف حالك؟ ١٢٣٤٥ اَلْعَرَبِيَّةُ",
    "שלום עולם! עִבְרִית",
    "नमस्ते दुनिया। हिन्दी में लिखा गया वाक्य १२३",
    "你好，世界！我们在北京吃了烤鸭。繁體中文測試",
    "こんにちは世界。カタカナとひらがな、漢字も。ｶﾀｶﾅ",
    "안녕하세요 세계! 한국어 문장입니다.",
    "สวัสดีชาวโลก ภาษาไทยไม่มีช่องว่างระหว่างคำ",
]
EMOJI = [
    "👍👍🏽 🎉🔥 ❤️ ✨",
    "family 👨‍👩‍👧‍👦 and 👩🏽‍💻 and 🏳️‍🌈 and 🏴‍☠️",
    "flags 🇫🇷🇯🇵🇺🇸 🇩🇪 keycaps 1️⃣ #️⃣ tag 🏴󠁧󠁢󠁳󠁣󠁴󠁿",
]
CODE = [
    'def f(x):\n\tif x  >= 10:   \n\t\treturn {"a": [1, 2.5e-3]}\n    return None  \n',
    '{\n  "name": "gpt-oss",\n  "ids": [199998, 200002],\n  "nested": {"ok": true, "v": null}\n}\n',
    "for (int i = 0; i < n; ++i) { a[i] <<= 2; } // C\r\n#include <stdio.h>\n",
    "SELECT * FROM t WHERE x='y' AND z != 3;\n\n\n",
    "path/to/file.py:12:3: E501 line too long (120 > 110 characters)\n",
]
NUMBERS = [
    "0 7 42 123 1234 12345 123456789 3.14159265358979 -0.001 1e10 1,000,000 2024-06-01T12:34:56Z",
    "31415926535897932384626433832795028841971693993751058209749445923078164062862089986280348253421170679",
]
WHITESPACE = [
    "a  b   c    d\t\te \t f\n\ng\r\nh \n i  \n\n  j",
    "   leading and trailing   ",
    "\n\n\n",
    " ",
    "\u00a0non-breaking\u2003em space\u3000ideographic\u200bzero-width",
]
CONTRACTIONS = [
    "don't can't won't it's I'm you're we've they'd she'll",
    "DON'T WE'LL I'M YOU'RE THEY'VE He'S O'Neil rock'n'roll ''quoted'' ' '",
    "l'homme d'État j'ai aujourd'hui",
]
MIXED = [
    "CamelCaseWords and snake_case_words and SCREAMING_CASE and mIxEd",
    "URLs: https://example.com/a/b?c=d&e=f#g mail@example.org",
    "Punctuation!!! ??? ... --- *** ``` ~~~ <<>> [[]] {{}} ((()))",
]


def _special_names() -> list[str]:
    return [harmony_encoding().decode([i]) for i in range(FIRST_SPECIAL, VOCAB_SIZE)]


def _special_text() -> str:
    """Every special and reserved name, glued to text in varied ways so boundaries are exercised."""
    joiners = ["", " ", "\n", "hi", " x ", "'s", "1", "é", "  \n", "<|", "|>"]
    parts = []
    for i, name in enumerate(_special_names()):
        parts.append(joiners[i % len(joiners)])
        parts.append(name)
    parts.append(" done")
    return "".join(parts)


def _corpus() -> list[str]:
    texts = SCRIPTS + EMOJI + CODE + NUMBERS + WHITESPACE + CONTRACTIONS + MIXED
    texts.append("\n".join(texts))
    texts.append(_special_text())
    texts.append(
        "<|start|>user<|message|>Wie spät ist es in 東京?<|end|>"
        "<|start|>assistant<|channel|>analysis<|message|>Need time.<|end|>"
        "<|start|>assistant<|channel|>commentary to=functions.now <|constrain|>json<|message|>"
        '{"tz": "Asia/Tokyo"}<|call|>'
    )
    return texts


CORPUS = _corpus()


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """Generate tokenizer.json into a fresh cache, timing the cold build; yields (path, seconds)."""
    # Resolve the vocabulary first: with TIKTOKEN_ENCODINGS_BASE pointing at it, the temporary cache below
    # only receives the tokenizer, and harmony keeps reading the same file.
    ensure_encodings_base()
    cache = tmp_path_factory.mktemp("hub_cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GPTOSS_HUB_CACHE", str(cache))
        start = time.perf_counter()
        path = hf_tokenizer.tokenizer_json_path()
        yield path, time.perf_counter() - start


@pytest.fixture(scope="module")
def tok(generated):
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(generated[0]))


@pytest.fixture(scope="module")
def auto_tok(generated, tmp_path_factory):
    folder = tmp_path_factory.mktemp("hf_tokenizer")
    hf_tokenizer.write_tokenizer_files(folder)
    with pytest.MonkeyPatch.context() as mp:
        # Prove nothing is fetched: the folder alone must be enough.
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("TRANSFORMERS_OFFLINE", "1")
        from transformers import AutoTokenizer

        yield AutoTokenizer.from_pretrained(str(folder))


def test_pattern_is_tiktokens_o200k_pattern(monkeypatch):
    openai_public = pytest.importorskip("tiktoken_ext.openai_public")
    # Read the pattern without letting tiktoken fetch or load the vocabulary.
    monkeypatch.setattr(openai_public, "load_tiktoken_bpe", lambda *args, **kwargs: {})
    assert openai_public.o200k_base()["pat_str"] == hf_tokenizer.O200K_PATTERN


def test_special_token_names_follow_harmony():
    names = hf_tokenizer.special_token_names()
    assert len(names) == VOCAB_SIZE - FIRST_SPECIAL == 1090
    assert len(set(names)) == len(names)
    for token_id, name in KNOWN_SPECIALS.items():
        assert names[token_id - FIRST_SPECIAL] == name
    special = harmony_encoding().special_tokens_set
    assert all(name in special for name in names)


@pytest.mark.slow
def test_generation_is_fast_atomic_and_cached(generated):
    path, cold_seconds = generated
    assert path.name == "tokenizer.json"
    assert path.parent.parent.name == "tokenizer"
    assert cold_seconds < 60, f"cold generation took {cold_seconds:.1f}s"
    # Only the finished file is left behind, no temporary from the atomic write.
    assert [p.name for p in path.parent.iterdir()] == ["tokenizer.json"]
    mtime = path.stat().st_mtime_ns
    start = time.perf_counter()
    again = hf_tokenizer.tokenizer_json_path()
    assert again == path
    assert path.stat().st_mtime_ns == mtime
    assert time.perf_counter() - start < cold_seconds


@pytest.mark.slow
def test_layout_matches_gpt_oss(generated):
    data = json.loads(generated[0].read_text(encoding="utf-8"))
    assert data["normalizer"] is None
    pre = data["pre_tokenizer"]
    assert pre["type"] == "Sequence"
    split, byte_level = pre["pretokenizers"]
    assert split["type"] == "Split"
    assert split["pattern"] == {"Regex": hf_tokenizer.O200K_PATTERN}
    assert split["behavior"] == "Isolated"
    assert split["invert"] is False
    assert byte_level["type"] == "ByteLevel"
    assert byte_level["add_prefix_space"] is False
    assert byte_level["use_regex"] is False
    assert data["decoder"]["type"] == "ByteLevel"
    model = data["model"]
    assert model["type"] == "BPE"
    assert model["ignore_merges"] is True
    assert len(model["vocab"]) == FIRST_SPECIAL
    assert sorted(model["vocab"].values()) == list(range(FIRST_SPECIAL))
    added = data["added_tokens"]
    assert [t["id"] for t in added] == list(range(FIRST_SPECIAL, VOCAB_SIZE))
    assert [t["content"] for t in added] == _special_names()
    assert all(t["special"] and not t["normalized"] for t in added)


@pytest.mark.slow
def test_vocabulary_matches_o200k_bytes(tok):
    """Every BPE id is exactly the o200k_base token of that rank; every id decodes like harmony."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    assert tok.get_vocab_size(with_added_tokens=True) == VOCAB_SIZE
    assert tok.id_to_token(VOCAB_SIZE) is None
    unicode_to_byte = {char: byte for byte, char in bytes_to_unicode().items()}
    vocab_file = ensure_encodings_base() / "o200k_base.tiktoken"
    for line in vocab_file.read_bytes().splitlines():
        token, rank = line.split()
        piece = tok.id_to_token(int(rank))
        assert bytes(unicode_to_byte[c] for c in piece) == base64.b64decode(token), rank
    encoding = harmony_encoding()
    ids = list(range(VOCAB_SIZE))
    decoded = tok.decode_batch([[i] for i in ids], skip_special_tokens=False)
    assert all(decoded), "some id decodes to nothing"
    mismatched = [i for i, text in zip(ids, decoded, strict=True) if text != encoding.decode([i])]
    assert mismatched == []


@pytest.mark.slow
def test_each_vocabulary_token_text_matches_harmony(tok):
    """The text of BPE tokens encoded alone: the merges must rebuild what tiktoken picks.

    Every 8th id keeps this a few seconds (harmony's per-call cost dominates); all 198,414 whole-UTF-8
    tokens were checked once when this file was written, with no difference.
    """
    encoding = harmony_encoding()
    texts = [encoding.decode([i]) for i in range(0, FIRST_SPECIAL, 8)]
    texts = [t for t in texts if "\ufffd" not in t]
    assert len(texts) > 24_000
    got = [e.ids for e in tok.encode_batch(texts, add_special_tokens=False)]
    mismatched = [t for t, ids in zip(texts, got, strict=True) if ids != encoding.encode(t, allowed_special="all")]
    assert mismatched == []


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(CORPUS)))
def test_ids_match_harmony_and_round_trip(tok, index):
    text = CORPUS[index]
    expected = harmony_encoding().encode(text, allowed_special="all")
    ids = tok.encode(text, add_special_tokens=False).ids
    assert ids == expected
    assert tok.decode(ids, skip_special_tokens=False) == text


@pytest.mark.slow
def test_every_special_token_is_one_id(tok):
    text = _special_text()
    ids = tok.encode(text, add_special_tokens=False).ids
    assert set(range(FIRST_SPECIAL, VOCAB_SIZE)) <= set(ids)
    for offset, name in enumerate(_special_names()):
        assert tok.encode(name, add_special_tokens=False).ids == [FIRST_SPECIAL + offset]


@pytest.mark.slow
def test_names_harmony_does_not_treat_as_special(tok):
    """`<|endofprompt|>` (gpt-oss's name for 200018) is plain text to harmony, and so here too.

    `<|reserved_201088|>` is special to harmony but past the model's vocabulary, so it cannot be one id
    of this tokenizer: it is the single text on which the two are known to disagree.
    """
    encoding = harmony_encoding()
    text = "a<|endofprompt|>b"
    assert tok.encode(text, add_special_tokens=False).ids == encoding.encode(text, allowed_special="all")
    assert all(i < FIRST_SPECIAL for i in tok.encode(text, add_special_tokens=False).ids)
    assert encoding.encode("<|reserved_201088|>", allowed_special="all") == [VOCAB_SIZE]
    assert tok.token_to_id("<|reserved_201088|>") is None


@pytest.mark.slow
def test_random_mixtures_match_harmony(tok):
    """Seeded random strings drawn across scripts, marks, digits, punctuation and whitespace."""
    pool = "".join(CORPUS[:-2]) + "'sStLlDdMmVvEeRr\t\r\n\u0301\u0308\u200d\ufe0f 0123456789/"
    rng = random.Random(20250805)
    texts = ["".join(rng.choice(pool) for _ in range(rng.randint(1, 80))) for _ in range(2000)]
    encoding = harmony_encoding()
    got = [e.ids for e in tok.encode_batch(texts, add_special_tokens=False)]
    mismatched = [t for t, ids in zip(texts, got, strict=True) if ids != encoding.encode(t, allowed_special="all")]
    assert mismatched == []
    decoded = tok.decode_batch(got, skip_special_tokens=False)
    assert decoded == texts


@pytest.mark.slow
def test_unicode_sweep_matches_harmony(tok):
    """Every code point (surrogates excepted), in runs of 64 with and without spaces between them."""
    encoding = harmony_encoding()
    points = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    texts = []
    for start in range(0, len(points), 64):
        chunk = [chr(c) for c in points[start : start + 64]]
        texts.append("".join(chunk))
        texts.append("a" + " ".join(chunk) + "'s 12")
    got = [e.ids for e in tok.encode_batch(texts, add_special_tokens=False)]
    mismatched = [t for t, ids in zip(texts, got, strict=True) if ids != encoding.encode(t, allowed_special="all")]
    assert mismatched == []


@pytest.mark.slow
def test_auto_tokenizer_loads_offline_and_matches(auto_tok, tok):
    from transformers import PreTrainedTokenizerFast

    assert isinstance(auto_tok, PreTrainedTokenizerFast)
    assert len(auto_tok) == VOCAB_SIZE
    assert auto_tok.bos_token == "<|startoftext|>" and auto_tok.bos_token_id == 199998
    assert auto_tok.eos_token == "<|return|>" and auto_tok.eos_token_id == 200002
    assert auto_tok.pad_token == "<|endoftext|>" and auto_tok.pad_token_id == 199999
    encoding = harmony_encoding()
    for text in CORPUS:
        expected = encoding.encode(text, allowed_special="all")
        # No BOS or other template is added: the hub renders prompts with harmony.
        ids = auto_tok(text)["input_ids"]
        assert ids == expected
        assert auto_tok.decode(ids) == text
    assert auto_tok.convert_ids_to_tokens(200006) == "<|start|>"
