"""The `gptoss-hub` command: `chat`, `plan`, `doctor`, `convert`, `conformance`, `serve`, `pull`, `list`, `rm`, `ps`, `bench`.

Errors from the hub are printed as one readable message (exit status 2), not a traceback; set
`GPTOSS_HUB_DEBUG=1` to see the traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from gptoss_hub._version import __version__
from gptoss_hub.cli.bench import add_bench_parser
from gptoss_hub.cli.chat import add_chat_parser
from gptoss_hub.cli.conformance import add_conformance_parser
from gptoss_hub.cli.convert import add_convert_parser
from gptoss_hub.cli.models import add_models_parsers
from gptoss_hub.cli.serve import add_serve_parser
from gptoss_hub.errors import GptOssHubError

__all__ = ["build_parser", "main"]


def _run_plan(args: argparse.Namespace, console: Console) -> int:
    from gptoss_hub.dispatch import plan
    from gptoss_hub.environment import requested_backend, where_served
    from gptoss_hub.hardware import load_report
    from gptoss_hub.sources import resolve_model

    report = load_report(args.hardware) if args.hardware else None
    backend = requested_backend(args.backend)
    spec = where_served(resolve_model(args.model), backend)
    from gptoss_hub.cli.serve import backend_options

    options = backend_options(args.option)
    the_plan = plan(spec, report, backend=backend, serving=args.serving, context=args.context, options=options)
    if args.json:
        console.print_json(json.dumps(the_plan.to_dict()))
    else:
        console.print(the_plan.explain(), markup=False, highlight=False)
    return 0 if the_plan.chosen else 1


def _doctor_data() -> dict:
    from gptoss_hub.dispatch import plan
    from gptoss_hub.hardware import probe
    from gptoss_hub.plugins import backend_registry, plugin_errors

    report = probe()
    registry = backend_registry()
    return {
        "version": __version__,
        "hardware": json.loads(report.model_dump_json()),
        "backends": [
            {"name": b.name, "rank": b.rank, "plugin": registry.owner(b.name), "description": b.description}
            for b in registry.all()
        ],
        "plugin_failures": [{"plugin": f.plugin, "stage": f.stage, "error": f.error} for f in plugin_errors()],
        "plans": {alias: plan(alias, report).to_dict() for alias in ("20b", "120b")},
    }


def _record(path: Path, console: Console) -> None:
    from gptoss_hub.hardware.recording import record_machine

    recording = record_machine()
    path.write_text(recording.model_dump_json(indent=2, exclude_defaults=True) + "\n", encoding="utf-8")
    console.print(f"wrote a recording of this machine to {path}", style="dim", highlight=False)


def _run_doctor(args: argparse.Namespace, console: Console) -> int:
    from rich.table import Table

    if args.record is not None:
        _record(args.record, Console(stderr=True) if args.json else console)
    data = _doctor_data()
    if args.json:
        console.print_json(json.dumps(data))
        return 1 if data["plugin_failures"] else 0
    hardware = data["hardware"]
    cpu = hardware["cpu"]
    gib = 1024**3
    machine = Table(title=f"gptoss-hub {__version__} on {hardware['os']} {hardware['machine']}", show_header=False)
    ram = f"{cpu['ram_total_bytes'] / gib:.1f} GiB RAM" if cpu.get("ram_total_bytes") else "RAM unknown"
    machine.add_row("CPU", f"{cpu['model']}, {cpu['cores']} usable cores, {ram}")
    machine.add_row("CPU flags", ", ".join(cpu.get("flags", ())) or "none of note")
    for accelerator in hardware["accelerators"]:
        memory = accelerator.get("memory_total_bytes")
        size = f", {memory / gib:.0f} GiB" if memory else ""
        machine.add_row(
            "GPU",
            f"{accelerator['vendor']} {accelerator['name']} ({accelerator.get('family') or 'unknown family'}{size})",
        )
    for detector, why in hardware["rejections"].items():
        machine.add_row(f"no {detector}", why)
    machine.add_row("runtimes", ", ".join(f"{k} {v}" for k, v in hardware["runtimes"].items()) or "none")
    console.print(machine)
    backends = Table(title="Backends", show_lines=False)
    for column in ("backend", "rank", "plugin", "what it is"):
        backends.add_column(column)
    for backend in data["backends"]:
        backends.add_row(backend["name"], str(backend["rank"]), backend["plugin"], backend["description"])
    for failure in data["plugin_failures"]:
        backends.add_row(
            f"[red]{failure['plugin']}[/red]", "-", failure["stage"], f"[red]broken: {failure['error']}[/red]"
        )
    console.print(backends)
    for alias, the_plan in data["plans"].items():
        chosen = the_plan["chosen"]
        if chosen:
            console.print(f'load("{alias}") would use [bold]{chosen}[/bold]')
        else:
            console.print(f'load("{alias}") has no backend here:')
            for candidate in the_plan["candidates"]:
                console.print(f"  {candidate['backend']}: {'; '.join(candidate['reasons'])}", markup=False)
    return 1 if data["plugin_failures"] else 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `gptoss-hub`."""
    parser = argparse.ArgumentParser(prog="gptoss-hub", description="Run gpt-oss models on any hardware.")
    parser.add_argument("--version", action="version", version=f"gptoss-hub {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_chat_parser(subparsers)
    plan_parser = subparsers.add_parser("plan", help="show which backend would run MODEL, and why not the others")
    plan_parser.add_argument("model")
    plan_parser.add_argument(
        "--backend", default=None, help="auto (default, or $GPTOSS_HUB_BACKEND), a family or a name"
    )
    plan_parser.add_argument(
        "--hardware",
        metavar="FIXTURE_OR_JSON",
        help="plan for another machine: a recorded fixture (h100, t4, …), a recording (`doctor --record`) "
        "or a report JSON",
    )
    plan_parser.add_argument("--context", type=int, default=None, help="context length to budget memory for (tokens)")
    plan_parser.add_argument("--serving", action="store_true", help="prefer backends that batch many requests")
    plan_parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a backend option gh.load would get, e.g. tensor_parallel_size=8: each backend says whether it can "
        "run with it (repeatable)",
    )
    plan_parser.add_argument("--json", action="store_true", help="print the plan as JSON")
    plan_parser.set_defaults(handler=_run_plan)
    doctor = subparsers.add_parser("doctor", help="report the hardware, runtimes, backends, broken plugins and plans")
    doctor.add_argument("--json", action="store_true", help="print the report as JSON")
    doctor.add_argument(
        "--record",
        metavar="FILE",
        type=Path,
        help="also write what the probe read here (tool output, files, packages) to FILE, for a bug report "
        "or `plan --hardware FILE`",
    )
    doctor.set_defaults(handler=_run_doctor)
    add_convert_parser(subparsers)
    add_conformance_parser(subparsers)
    add_serve_parser(subparsers)
    add_models_parsers(subparsers)
    add_bench_parser(subparsers)
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
