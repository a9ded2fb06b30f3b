"""The hub's overhead on llama.cpp: tokens per second through `Model.chat`, over raw `Llama.generate`.

Both run on the same loaded `Llama` (tiny-harmony exported to GGUF f32) with the same prompt ids and
greedy sampling, and stop at the same harmony stop ids, so they generate the same tokens. Rounds
alternate between the two so machine load affects both alike. The hub's figure includes rendering the
messages to harmony, the engine's bookkeeping and parsing the reply into reasoning, content and tool
calls; the raw figure is llama-cpp-python alone. Both reuse the cached prompt the same way
(`Llama.generate` keeps it between calls), so the ratio is the hub's cost per request and token.

    python benchmarks/llamacpp_overhead.py [--rounds 20] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence

from gptoss_hub.demo_tools import get_weather

#: (messages, tools): a tool call (analysis then a commentary call) and a plain answer (analysis then final).
REQUESTS = [
    ([{"role": "user", "content": "What is the weather in Tokyo?"}], [get_weather]),
    ([{"role": "user", "content": "What is 2 + 2?"}], None),
]
STOP_IDS = (200002, 200012)  # <|return|>, <|call|>


def _raw(llama, prompt: list[int]) -> tuple[int, float]:
    start = time.perf_counter()
    produced = 0
    generator = llama.generate(prompt, temp=0.0, top_k=0, top_p=1.0, min_p=0.0, typical_p=1.0, repeat_penalty=1.0)
    for token in generator:
        produced += 1
        if token in STOP_IDS:
            break
    generator.close()
    return produced, time.perf_counter() - start


def _hub(model, messages, tools) -> tuple[int, float]:
    start = time.perf_counter()
    reply = model.chat(messages, tools=tools, temperature=0.0)
    return len(reply.token_ids), time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    """Run the comparison and print it; returns the median tokens/s of each side and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None, help="llama.cpp threads (default: usable cores)")
    args = parser.parse_args(argv)

    import gptoss_hub as gh

    options = {"n_threads": args.threads} if args.threads else {}
    with gh.load("tiny", backend="llamacpp", **options) as model:
        llama = model._engine._llama
        prompts = [model.prompt_ids(messages, tools=tools) for messages, tools in REQUESTS]
        raw_rates, hub_rates, lengths = [], [], set()
        for round_number in range(args.rounds + 1):
            for prompt, (messages, tools) in zip(prompts, REQUESTS, strict=True):
                raw_tokens, raw_seconds = _raw(llama, prompt)
                hub_tokens, hub_seconds = _hub(model, messages, tools)
                if raw_tokens != hub_tokens:
                    raise RuntimeError(f"raw generated {raw_tokens} tokens but the hub {hub_tokens}")
                lengths.add(hub_tokens)
                if round_number:  # the first round warms both paths up
                    raw_rates.append(raw_tokens / raw_seconds)
                    hub_rates.append(hub_tokens / hub_seconds)
    results = {"raw": statistics.median(raw_rates), "hub": statistics.median(hub_rates)}
    results["ratio"] = results["hub"] / results["raw"]
    print(f"{len(REQUESTS)} requests x {args.rounds} rounds, replies of {sorted(lengths)} tokens, medians")
    print(f"raw Llama.generate   {results['raw']:9.1f} tokens/s")
    print(f"hub Model.chat       {results['hub']:9.1f} tokens/s")
    print(f"hub / raw            {results['ratio']:9.3f} x   (overhead {100 * (1 - results['ratio']):.1f}%)")
    return results


if __name__ == "__main__":
    main()
