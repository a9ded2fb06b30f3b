"""`gptoss-hub bench`: how fast each backend that can run a model is on this machine, side by side.

For each backend: time to first token (a streamed chat), single-stream decode tokens per second (the engine
generating a fixed number of tokens, no stop ids), throughput at several concurrent chats, and, where the
runtime has a raw path (llama.cpp's `Llama.generate`, mlx-lm's `generate_step`), the hub's tokens per
second over the raw runtime's on the same prompt (`Engine.raw_decode_rate`). Every figure is a median of repeated measurements on
this machine under its current load; compare runs made on the same machine only.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["BackendFigures", "bench_backend", "bench_backends", "draw_chart"]

#: Chats sent to measure time to first token and throughput (short questions the tiny models answer).
QUESTIONS = ("What is 2 + 2?", "Say hello.", "What color is the sky?", "Tell me a joke.")


@dataclass
class BackendFigures:
    """One backend's figures (seconds and tokens per second)."""

    backend: str
    device: str
    dtype: str
    #: Median seconds from sending a chat to its first streamed token.
    ttft_s: float
    #: Median tokens per second of one generation of `decode_tokens` tokens.
    decode_tokens_per_s: float
    decode_tokens: int
    #: Concurrent chats -> output tokens per second over all of them.
    throughput: dict[int, float] = field(default_factory=dict)
    #: Hub / raw tokens per second on the same prompt, where the runtime has a raw path.
    hub_over_raw: float | None = None
    raw_tokens_per_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready figures."""
        figures = asdict(self)
        figures["throughput"] = {str(k): v for k, v in self.throughput.items()}
        return figures


def _ttft(model: Any, repeats: int) -> float:
    from gptoss_hub.events import ContentDelta, ReasoningDelta

    times = []
    for index in range(repeats):
        messages = [{"role": "user", "content": QUESTIONS[index % len(QUESTIONS)]}]
        started = time.perf_counter()
        first = None
        for event in model.stream(messages, temperature=0.0):
            if first is None and isinstance(event, (ReasoningDelta, ContentDelta)):
                first = time.perf_counter() - started
        times.append(first if first is not None else time.perf_counter() - started)
    return statistics.median(times)


def _decode(model: Any, tokens: int, repeats: int) -> tuple[float, list[int]]:
    from gptoss_hub.engine import GenerationRequest

    prompt = model.prompt_ids([{"role": "user", "content": QUESTIONS[0]}])
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        produced = 0
        request = GenerationRequest(prompt_ids=prompt, temperature=0.0, max_tokens=tokens)
        for chunk in model._engine.generate(request):
            produced += len(chunk.token_ids)
        rates.append(produced / (time.perf_counter() - started))
    return statistics.median(rates), prompt


def _throughput(model: Any, concurrency: int, rounds: int) -> float:
    async def one(index: int) -> int:
        messages = [{"role": "user", "content": QUESTIONS[index % len(QUESTIONS)]}]
        reply = await model.achat(messages, temperature=0.0)
        return len(reply.token_ids)

    async def together() -> float:
        started = time.perf_counter()
        produced = await asyncio.gather(*(one(index) for index in range(concurrency)))
        return sum(produced) / (time.perf_counter() - started)

    return statistics.median(asyncio.run(together()) for _ in range(rounds))


def bench_backend(
    model_name: str,
    backend: str,
    *,
    concurrency: Sequence[int] = (1, 4, 16),
    decode_tokens: int = 64,
    repeats: int = 3,
    step: Callable[[str], None] = lambda what: None,
) -> BackendFigures:
    """Load `model_name` on `backend`, measure it and close it; `step` is told what is measured next."""
    import gptoss_hub as gh
    from gptoss_hub.engine import Engine
    from gptoss_hub.errors import InvalidRequestError
    from gptoss_hub.testing.checkpoints import reference_options

    step(f"{backend}: loading")
    with gh.load(model_name, backend=backend, **reference_options(backend, model_name)) as model:
        if not isinstance(model._engine, Engine):
            raise InvalidRequestError(f"{backend} serves the model elsewhere; bench measures engines on this machine.")
        _ttft(model, 1)  # warm up every path once
        step(f"{backend}: time to first token")
        ttft = _ttft(model, repeats)
        step(f"{backend}: decode")
        decode, prompt = _decode(model, decode_tokens, repeats)
        figures = BackendFigures(model.info.backend, model.info.device, model.info.dtype, ttft, decode, decode_tokens)
        for count in concurrency:
            step(f"{backend}: {count} concurrent")
            figures.throughput[count] = _throughput(model, count, repeats)
        engine = model._engine
        if engine.raw_decode_rate(prompt, 1) is not None:  # the runtime has a loop of its own to compare with
            step(f"{backend}: raw runtime")
            raw_rates, hub_rates = [], []
            for _ in range(repeats):  # alternated, so load moves both alike
                raw_rates.append(engine.raw_decode_rate(prompt, decode_tokens) or 0.0)
                hub_rates.append(_decode(model, decode_tokens, 1)[0])
            raw_rate = statistics.median(raw_rates)
            figures.raw_tokens_per_s = raw_rate
            figures.hub_over_raw = statistics.median(hub_rates) / raw_rate if raw_rate else None
    return figures


def bench_backends(model_name: str, backends: Sequence[str], **settings: Any) -> list[BackendFigures]:
    """`bench_backend` for each of `backends`, in turn (one loaded at a time)."""
    return [bench_backend(model_name, backend, **settings) for backend in backends]


def draw_chart(results: Sequence[BackendFigures], path: Path, title: str) -> None:
    """A PNG with two panels: throughput against concurrent chats per backend, and time to first token."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (throughput, ttft) = plt.subplots(1, 2, figsize=(11, 4.2))
    for figures in results:
        counts = sorted(figures.throughput)
        throughput.plot(counts, [figures.throughput[c] for c in counts], marker="o", label=figures.backend)
    throughput.set_xscale("log", base=2)
    counts = sorted({count for figures in results for count in figures.throughput})
    throughput.set_xticks(counts, [str(count) for count in counts])
    throughput.set_xlabel("concurrent chats")
    throughput.set_ylabel("output tokens / s")
    throughput.set_title("throughput")
    throughput.legend()
    names = [figures.backend for figures in results]
    ttft.barh(names, [figures.ttft_s * 1000 for figures in results], color="#4a8")
    ttft.set_xlabel("ms")
    ttft.set_title("time to first token")
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
