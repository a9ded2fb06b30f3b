"""`gptoss-hub bench`: each backend that can run a model here, measured side by side (see `gptoss_hub.bench`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.console import Console

__all__ = ["add_bench_parser", "chosen_backends"]


def add_bench_parser(subparsers: Any) -> None:
    """Register the `bench` sub-command."""
    parser = subparsers.add_parser(
        "bench", help="measure each backend that can run MODEL here: first-token time, decode, throughput, overhead"
    )
    parser.add_argument("--model", default="tiny", help="the model to measure (default: tiny)")
    parser.add_argument(
        "--backend", default="all", help="all (every backend that can run the model here) or NAME[,NAME...]"
    )
    parser.add_argument("--concurrency", default="1,4,16", help="concurrent chats to measure throughput at")
    parser.add_argument("--tokens", type=int, default=64, help="tokens per decode measurement (default 64)")
    parser.add_argument("--repeats", type=int, default=3, help="measurements per figure; the median is kept")
    parser.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write the figures as JSON")
    parser.add_argument("--chart", type=Path, default=None, metavar="PNG", help="also draw them (matplotlib)")
    parser.set_defaults(handler=_run_bench)


def chosen_backends(model: str, option: str) -> list[str]:
    """The backends `--backend` names; `all` is every backend that can run `model` here, test stand-ins
    (negative rank) left out."""
    from gptoss_hub.dispatch import plan
    from gptoss_hub.errors import NoBackendError

    the_plan = plan(model)
    if option != "all":
        names = [name.strip() for name in option.split(",") if name.strip()]
        for name in names:
            candidate = next((c for c in the_plan.candidates if c.backend == name), None)
            if candidate is None or not candidate.viable:
                why = "; ".join(candidate.reasons) if candidate else "no backend has that name (`gptoss-hub doctor`)"
                raise NoBackendError(f"{name} cannot run {the_plan.spec.name} here: {why}")
        return names
    names = [c.backend for c in the_plan.candidates if c.viable and c.rank >= 0]
    if not names:
        raise NoBackendError(f"No backend can run {the_plan.spec.name} here.\n{the_plan.explain()}")
    return names


def _run_bench(args: argparse.Namespace, console: Console) -> int:
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from gptoss_hub.bench import bench_backend, draw_chart
    from gptoss_hub.errors import InvalidRequestError

    try:
        concurrency = sorted({int(part) for part in args.concurrency.split(",") if part.strip()})
    except ValueError as exc:
        raise InvalidRequestError(f"--concurrency takes numbers like 1,4,16, got {args.concurrency!r}.") from exc
    if not concurrency or concurrency[0] < 1 or args.tokens < 1 or args.repeats < 1:
        raise InvalidRequestError("--concurrency, --tokens and --repeats must be at least 1.")
    backends = chosen_backends(args.model, args.backend)
    results = []
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("starting", total=None)
        for backend in backends:
            results.append(
                bench_backend(
                    args.model,
                    backend,
                    concurrency=concurrency,
                    decode_tokens=args.tokens,
                    repeats=args.repeats,
                    step=lambda what: progress.update(task, description=what),
                )
            )
    table = Table(title=f"gptoss-hub bench: {args.model} (medians of {args.repeats})")
    for column in ("backend", "device", "first token ms", "decode tok/s", *[f"{c} chats tok/s" for c in concurrency]):
        table.add_column(column, justify="left" if column in ("backend", "device") else "right")
    table.add_column("hub / raw", justify="right")
    for figures in results:
        overhead = f"{figures.hub_over_raw:.3f}" if figures.hub_over_raw is not None else "-"
        table.add_row(
            figures.backend,
            f"{figures.device}, {figures.dtype}",
            f"{figures.ttft_s * 1000:.1f}",
            f"{figures.decode_tokens_per_s:.1f}",
            *[f"{figures.throughput[c]:.1f}" for c in concurrency],
            overhead,
        )
    console.print(table)
    if args.json:
        document = {"model": args.model, "repeats": args.repeats, "backends": [r.to_dict() for r in results]}
        args.json.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        console.print(f"wrote {args.json}", style="dim")
    if args.chart:
        draw_chart(results, args.chart, f"gptoss-hub bench: {args.model} on this machine")
        console.print(f"wrote {args.chart}", style="dim")
    return 0
