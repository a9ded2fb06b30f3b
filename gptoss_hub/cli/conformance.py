"""`gptoss-hub conformance --backend all --report conformance.md`: run the kit, write the matrix."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console

__all__ = ["add_conformance_parser", "run_conformance"]


#: Corpus examples `--quick` checks greedy ids on.
QUICK_SAMPLE = 64


def add_conformance_parser(subparsers: Any) -> None:
    """Register the `conformance` sub-command."""
    parser = subparsers.add_parser(
        "conformance", help="check backends token by token against the reference, and write the matrix"
    )
    parser.add_argument(
        "--backend", default="all", help="NAME[,NAME...] or 'all' (every backend that can run the tiny model here)"
    )
    parser.add_argument("--model", default="tiny", help="checkpoint to check on (default: the tiny reference)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds one check may take (default 600)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"check greedy ids on {QUICK_SAMPLE} corpus examples spread over every kind, not all of them "
        "(the other checks are the same)",
    )
    parser.add_argument(
        "-k", dest="keyword", default=None, help="run only the checks matching this pytest -k expression"
    )
    parser.add_argument(
        "--report",
        type=Path,
        default=Path("conformance.md"),
        help="Markdown matrix to write; the .json and .png beside it (default conformance.md)",
    )
    parser.set_defaults(handler=run_conformance)


def run_conformance(args: argparse.Namespace, console: Console) -> int:
    """Run the kit under pytest, in this process, then write and show the matrix. 0 when nothing failed."""
    import pytest

    from gptoss_hub.conformance import kit_tests
    from gptoss_hub.conformance.report import write_reports

    with tempfile.TemporaryDirectory() as scratch:
        results_path = Path(scratch) / "results.json"
        status = pytest.main(
            [
                kit_tests.__file__,
                "-q",
                "-p",
                "no:cacheprovider",
                "--noconftest",  # the kit alone, whatever project the command runs in
                "-o",
                "addopts=",
                f"--rootdir={scratch}",
                f"--gptoss-backend={args.backend}",
                f"--gptoss-model={args.model}",
                f"--gptoss-timeout={args.timeout}",
                f"--gptoss-report={results_path}",
                f"--gptoss-sample={QUICK_SAMPLE if args.quick else 0}",
                *(["-k", args.keyword] if args.keyword else []),
            ]
        )
        if not results_path.exists():
            console.print(f"[red]The kit did not run (pytest exit status {int(status)}).[/red]")
            return 2
        import json

        note = None
        if args.quick:
            from gptoss_hub.conformance.plugin import sample_examples
            from gptoss_hub.testing import corpus_examples

            examples = corpus_examples()
            checked = len(sample_examples(examples, QUICK_SAMPLE))
            note = (
                f"Quick run: greedy ids checked on {checked} of the {len(examples)} corpus examples (spread over "
                "every kind); run without --quick for all of them."
            )
        matrix = write_reports(json.loads(results_path.read_text()), args.report, note)
    console.print(matrix.to_markdown(), markup=False, highlight=False, soft_wrap=True)
    if note:
        console.print(note, markup=False, highlight=False)
    console.print(
        f"wrote {args.report}, {args.report.with_suffix('.json')} and {args.report.with_suffix('.png')}: "
        f"{len(matrix.rows)} backend(s), {len(matrix.checks)} checks, {matrix.failures} failure(s)"
    )
    return 1 if matrix.failures else 0
