"""vLLM through the hub: concurrent over sequential throughput, and the hub's tokens/s over raw vLLM's.

Loads tiny-harmony on the vLLM backend (vLLM's CPU build here), then, on that one engine:

- **sequential**: N `Model.chat` calls one after another; **concurrent**: the same N as `Model.achat`
  calls gathered at once, which vLLM batches (`--batches` such batches back to back per measurement: one
  batch of the tiny model takes well under a second, too short to time steadily). Their ratio is what continuous batching buys.
- **raw vLLM**: the same N prompts (the ids the hub rendered) submitted straight to vLLM's `AsyncLLM`
  with the same sampling, all at once; **hub / raw** compares it with the concurrent hub figure: the
  hub's rendering, bridging between event loops and reply parsing, per token.

Rounds alternate so machine load affects every side alike; medians are printed, and **hub / raw** is the
median of each round's ratio (hub and raw run back to back, in alternating order).

    python benchmarks/vllm_throughput.py [--requests 16] [--rounds 9] [--batches 10] [--sequential-rounds 3]

It also prints this process's CPU time per 1000 tokens on each side: the hub's own cost, steadier than
throughput on a machine where the engine core and the frontend share two cores.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Sequence

from gptoss_hub.demo_tools import get_weather

QUESTIONS = ["What is 2 + 2?", "Say hello.", "What color is the sky?", "What is the weather in Paris?"]
STOP_IDS = [200002, 200012]


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    """Run the three measurements and print them; returns the medians (tokens/s) and the two ratios."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument(
        "--batches", type=int, default=10, help="batches timed back to back per measurement (a batch is short)"
    )
    parser.add_argument(
        "--sequential-rounds",
        type=int,
        default=3,
        help="rounds that also time the sequential baseline (slow, and only needed for the batching ratio)",
    )
    args = parser.parse_args(argv)

    import gptoss_hub as gh
    from gptoss_hub.testing import checkpoint_path

    conversations = [[{"role": "user", "content": QUESTIONS[n % len(QUESTIONS)]}] for n in range(args.requests)]
    model = gh.load(checkpoint_path("tiny-harmony"), backend="vllm", max_context=4096, dtype="float32")
    try:
        engine = model._engine
        prompts = [model.prompt_ids(c, tools=[get_weather]) for c in conversations]

        def sequential() -> float:
            start = time.perf_counter()
            tokens = sum(len(model.chat(c, tools=[get_weather], temperature=0.0).token_ids) for c in conversations)
            return tokens / (time.perf_counter() - start)

        def concurrent() -> tuple[float, float]:
            async def together():
                return await asyncio.gather(
                    *(model.achat(c, tools=[get_weather], temperature=0.0) for c in conversations)
                )

            start, cpu = time.perf_counter(), time.process_time()
            tokens = sum(len(r.token_ids) for _ in range(args.batches) for r in asyncio.run(together()))
            return tokens / (time.perf_counter() - start), 1e6 * (time.process_time() - cpu) / tokens

        def raw() -> tuple[float, float]:
            from vllm import SamplingParams
            from vllm.inputs import TokensPrompt

            params = SamplingParams(
                temperature=0.0,
                max_tokens=256,
                stop_token_ids=STOP_IDS,
                detokenize=False,
                skip_special_tokens=False,
                ignore_eos=True,
            )

            async def one(n: int) -> int:
                final = None
                async for output in engine._llm.generate(
                    TokensPrompt(prompt_token_ids=prompts[n]), params, f"raw-{time.monotonic_ns()}-{n}"
                ):
                    final = output
                return len(final.outputs[0].token_ids)

            async def everything() -> int:
                total = 0
                for _ in range(args.batches):
                    total += sum(await asyncio.gather(*(one(n) for n in range(len(prompts)))))
                return total

            start, cpu = time.perf_counter(), time.process_time()
            tokens = asyncio.run_coroutine_threadsafe(everything(), engine._loop).result()
            return tokens / (time.perf_counter() - start), 1e6 * (time.process_time() - cpu) / tokens

        concurrent(), raw()  # warm up
        results: dict[str, list[float]] = {"sequential": [], "concurrent": [], "raw": []}
        cpu: dict[str, list[float]] = {"concurrent": [], "raw": []}
        ratios: list[float] = []
        for round_number in range(args.rounds):
            if round_number < args.sequential_rounds:
                results["sequential"].append(sequential())
            # Hub and raw run back to back, in alternating order, and are compared within the round, so
            # a slower or faster stretch of the machine affects both sides of each ratio alike.
            for side in ("raw", "concurrent") if round_number % 2 else ("concurrent", "raw"):
                speed, cpu_per_k = (raw if side == "raw" else concurrent)()
                results[side].append(speed)
                cpu[side].append(cpu_per_k)
            ratios.append(results["concurrent"][-1] / results["raw"][-1])
    finally:
        model.close()
    medians = {name: statistics.median(values) for name, values in results.items()}
    medians["batching"] = medians["concurrent"] / medians["sequential"]
    medians["hub_over_raw"] = statistics.median(ratios)
    print(
        f"{args.requests} requests, median of {args.rounds} rounds (tokens/s; hub / raw: median of the rounds' ratios)"
    )
    print(f"hub sequential (chat)          {medians['sequential']:9.1f}")
    print(f"hub concurrent (achat)         {medians['concurrent']:9.1f}   {medians['batching']:5.2f} x sequential")
    print(f"raw vLLM AsyncLLM, same batch  {medians['raw']:9.1f}")
    print(
        f"hub / raw                      {medians['hub_over_raw']:9.3f} x   (overhead {100 * (1 - medians['hub_over_raw']):.1f}%;"
        f" rounds {min(ratios):.3f} to {max(ratios):.3f})"
    )
    # CPU time of this process (vLLM's frontend, plus the hub's work on the hub side) per 1000 tokens: the
    # hub's own cost without the run-to-run noise of throughput. vLLM's engine core, a child process, is
    # not counted; on this 2-core machine it competes with the frontend for the same cores.
    medians["cpu_ms_per_1k_hub"] = statistics.median(cpu["concurrent"])
    medians["cpu_ms_per_1k_raw"] = statistics.median(cpu["raw"])
    print(
        f"frontend CPU ms / 1000 tokens   hub {medians['cpu_ms_per_1k_hub']:.0f}, raw {medians['cpu_ms_per_1k_raw']:.0f}"
        f"   ({medians['cpu_ms_per_1k_hub'] / medians['cpu_ms_per_1k_raw']:.2f} x)"
    )
    return medians


if __name__ == "__main__":
    main()
