from gptoss_hub.memory import GIB, kv_cache_bytes, required_bytes, weights_bytes


def test_weights_by_format():
    assert weights_bytes("20b", "mxfp4") < 16 * GIB < weights_bytes("20b", "bf16")
    assert weights_bytes("120b", "mxfp4") < 80 * 10**9 < weights_bytes("120b", "bf16")


def test_kv_cache_grows_only_in_full_attention_layers():
    # 12 full-attention layers x 8 kv heads x 64 dims x (k, v) x 2 bytes per token, plus 12 sliding layers capped at 128.
    per_token = 12 * 8 * 64 * 2 * 2
    sliding = 12 * 8 * 64 * 2 * 2 * 128
    assert kv_cache_bytes("20b", 1000) == per_token * 1000 + sliding
    assert kv_cache_bytes("20b", 100) == per_token * 100 + 12 * 8 * 64 * 2 * 2 * 100


def test_the_memory_rules_of_the_dispatch_table():
    a100_40gb, h100_80gb = 40 * 10**9, 80 * 10**9
    assert required_bytes("20b", "bf16") > a100_40gb  # 20b in bf16 does not fit an A100 40 GB
    assert required_bytes("20b", "mxfp4") < 16 * 10**9 * 1.1  # "about 16 GB" in MXFP4
    assert required_bytes("120b", "mxfp4") < h100_80gb  # 120b in MXFP4 fits one 80 GB GPU
    assert required_bytes("120b", "mxfp4", context_tokens=131_072) > required_bytes("120b", "mxfp4")
