"""The `gptoss-hub` command: `chat`, `plan`, `doctor`.

Errors from the hub are printed as one readable message (exit status 2), not a traceback; set
`GPTOSS_HUB_DEBUG=1` to see the traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from rich.console import Console

from gptoss_hub._version import __version__
from gptoss_hub.cli.chat import add_chat_parser
from gptoss_hub.errors import GptOssHubError

__all__ = ["build_parser", "main"]


def _run_plan(args: argparse.Namespace, console: Console) -> int:
    from gptoss_hub.dispatch import plan

    the_plan = plan(args.model, backend=args.backend)
    console.print(the_plan.explain(), markup=False, highlight=False)
    return 0 if the_plan.chosen else 1


def _run_doctor(args: argparse.Namespace, console: Console) -> int:
    from gptoss_hub.hardware import probe
    from gptoss_hub.plugins import backend_registry, plugin_errors

    report = probe()
    gib = 1024**3
    console.print(f"gptoss-hub {__version__} on {report.os} {report.machine}", markup=False)
    ram = f"{report.cpu.ram_total_bytes / gib:.1f} GiB RAM" if report.cpu.ram_total_bytes else "RAM unknown"
    console.print(f"CPU: {report.cpu.model}, {report.cpu.cores} usable cores, {ram}", markup=False)
    console.print(f"     flags: {', '.join(report.cpu.flags) or 'none of note'}", markup=False)
    for accelerator in report.accelerators:
        console.print(f"GPU: {accelerator.vendor} {accelerator.name} ({accelerator.family})", markup=False)
    for detector, why in report.rejections.items():
        console.print(f"  {detector}: {why}", style="dim", markup=False)
    console.print("Runtimes: " + (", ".join(f"{k} {v}" for k, v in report.runtimes.items()) or "none"), markup=False)
    registry = backend_registry()
    console.print("Backends:", markup=False)
    for backend in registry.all():
        console.print(f"  {backend.name} (rank {backend.rank}, plugin {registry.owner(backend.name)})", markup=False)
    failures = plugin_errors()
    for failure in failures:
        console.print(f"  broken plugin {failure.plugin} ({failure.stage}): {failure.error}", style="red", markup=False)
    return 1 if failures else 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `gptoss-hub`."""
    parser = argparse.ArgumentParser(prog="gptoss-hub", description="Run gpt-oss models on any hardware.")
    parser.add_argument("--version", action="version", version=f"gptoss-hub {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_chat_parser(subparsers)
    plan_parser = subparsers.add_parser("plan", help="show which backend would run MODEL here, and why")
    plan_parser.add_argument("model")
    plan_parser.add_argument("--backend", default="auto")
    plan_parser.set_defaults(handler=_run_plan)
    doctor = subparsers.add_parser("doctor", help="report the hardware, runtimes, backends and broken plugins")
    doctor.set_defaults(handler=_run_doctor)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `gptoss-hub` console script."""
    args = build_parser().parse_args(argv)
    console = Console(highlight=False)
    try:
        return args.handler(args, console)
    except GptOssHubError as exc:
        if os.environ.get("GPTOSS_HUB_DEBUG"):
            raise
        Console(stderr=True).print(f"error: {exc}", style="red", markup=False, highlight=False)
        return 2


if __name__ == "__main__":
    sys.exit(main())
