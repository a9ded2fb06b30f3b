"""The hub's overhead on MLX: tokens per second through `Model.chat`, over raw mlx-lm generation.

Both run on the same loaded mlx-lm model (tiny-harmony on MLX's CPU build, or `--device metal` on a Mac)
with the same prompt ids and greedy sampling, and stop at the same harmony stop ids, so they generate the
same tokens, on the engine's MLX thread. Rounds alternate between the two so machine load affects both alike. The raw side is
`mlx_lm.generate.generate_step` with a fresh KV cache per request; the hub's cache is emptied before each
request too, so both evaluate the whole prompt, and the hub's figure adds rendering the messages to
harmony, its MLX thread, its own sampler and parsing the reply. A third line shows the hub as a chat uses
it, reusing its cache across requests.

    python benchmarks/mlx_overhead.py [--rounds 20] [--device cpu|metal]
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


def _raw(model, prompt: list[int]) -> tuple[int, float]:
    import mlx.core as mx
    from mlx_lm.generate import generate_step

    start = time.perf_counter()
    produced = 0
    for token, _ in generate_step(mx.array(prompt), model, max_tokens=1000):
        produced += 1
        if int(token) in STOP_IDS:
            break
    return produced, time.perf_counter() - start


def _hub(model, messages, tools, *, fresh: bool) -> tuple[int, float]:
    if fresh:
        model._engine._cache.reset()  # evaluate the whole prompt, as the raw side does
    start = time.perf_counter()
    reply = model.chat(messages, tools=tools, temperature=0.0)
    return len(reply.token_ids), time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    """Run the comparison and print it; returns the median tokens/s of each side and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--device", choices=("cpu", "metal"), default="cpu")
    args = parser.parse_args(argv)

    import gptoss_hub as gh

    with gh.load("tiny", backend=f"mlx/{args.device}") as model:
        from gptoss_hub.backends.mlx.engine import mlx_thread

        mlx_model, thread = model._engine._model, mlx_thread()
        prompts = [model.prompt_ids(messages, tools=tools) for messages, tools in REQUESTS]
        rates: dict[str, list[float]] = {"raw": [], "hub": [], "hub, cache reused": []}
        lengths = set()
        for round_number in range(args.rounds + 1):
            for prompt, (messages, tools) in zip(prompts, REQUESTS, strict=True):
                # MLX work belongs to the thread whose streams made the model's arrays: the engine's thread.
                raw_tokens, raw_seconds = thread.call(args.device, lambda p=prompt: _raw(mlx_model, p))
                hub_tokens, hub_seconds = _hub(model, messages, tools, fresh=True)
                reused_tokens, reused_seconds = _hub(model, messages, tools, fresh=False)
                if not raw_tokens == hub_tokens == reused_tokens:
                    raise RuntimeError(f"raw generated {raw_tokens} tokens but the hub {hub_tokens}/{reused_tokens}")
                lengths.add(hub_tokens)
                if round_number:  # the first round warms every path up
                    rates["raw"].append(raw_tokens / raw_seconds)
                    rates["hub"].append(hub_tokens / hub_seconds)
                    rates["hub, cache reused"].append(reused_tokens / reused_seconds)
    results = {name: statistics.median(values) for name, values in rates.items()}
    results["ratio"] = results["hub"] / results["raw"]
    print(
        f"{len(REQUESTS)} requests x {args.rounds} rounds on mlx/{args.device}, replies of {sorted(lengths)} tokens, medians"
    )
    print(f"raw mlx_lm generate_step   {results['raw']:9.1f} tokens/s")
    print(f"hub Model.chat             {results['hub']:9.1f} tokens/s")
    print(f"hub / raw                  {results['ratio']:9.3f} x   (overhead {100 * (1 - results['ratio']):.1f}%)")
    print(f"hub, cache reused          {results['hub, cache reused']:9.1f} tokens/s (a chat's next request)")
    return results


if __name__ == "__main__":
    main()
