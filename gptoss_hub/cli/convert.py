"""`gptoss-hub convert SRC OUT.gguf --outtype {f32,bf16,mxfp4}`: a Hugging Face gpt-oss checkpoint to GGUF."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console

__all__ = ["add_convert_parser", "run_convert"]


def add_convert_parser(subparsers: Any) -> None:
    """Register the `convert` sub-command."""
    from gptoss_hub.convert import OUTTYPES

    parser = subparsers.add_parser(
        "convert", help="write a Hugging Face gpt-oss checkpoint (folder, repo id or alias) as a GGUF file"
    )
    parser.add_argument("source", help="checkpoint folder, Hugging Face repo id, or 20b/120b/tiny")
    parser.add_argument("output", help="the .gguf file to write")
    parser.add_argument(
        "--outtype",
        choices=OUTTYPES,
        default="mxfp4",
        help="f32: every weight float32; bf16: matrices bfloat16; mxfp4 (default): MXFP4 experts, bf16 elsewhere",
    )
    parser.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")
    parser.set_defaults(handler=run_convert)


def run_convert(args: argparse.Namespace, console: Console) -> int:
    """Resolve the source (downloading a repo's safetensors if needed), convert, report."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from gptoss_hub.convert import convert_checkpoint
    from gptoss_hub.errors import InvalidRequestError
    from gptoss_hub.sources import resolve_model

    output = Path(args.output)
    if output.suffix.lower() != ".gguf":
        raise InvalidRequestError(f"The output should be a .gguf file, got {args.output!r}.")
    if output.exists() and not args.force:
        raise InvalidRequestError(f"{output} exists; pass --force to overwrite it.")
    spec = resolve_model(args.source)
    # Only the safetensors, config and tokenizer are needed, not the repos' original/ or metal/ copies.
    folder = spec.local_dir(ignore_patterns=["original/*", "metal/*"])
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    ) as progress:
        task = progress.add_task(f"converting {spec.name}", total=None)

        def advance(name: str, done: int, total: int) -> None:
            progress.update(task, total=total, completed=done, description=f"{name:<32}")

        convert_checkpoint(folder, output, args.outtype, progress=advance)
    size = output.stat().st_size / 1024**2
    console.print(f"wrote {output} ({args.outtype}, {size:,.1f} MiB)")
    return 0
