"""`gptoss-hub pull`, `list`, `rm` and `ps`: models on disk, and what a running server has loaded."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rich.console import Console

__all__ = ["add_models_parsers"]

GIB = 1024**3


def add_models_parsers(subparsers: Any) -> None:
    """Register the `pull`, `list`, `rm` and `ps` sub-commands."""
    pull = subparsers.add_parser(
        "pull", help="download the files a backend would load for MODEL (resumable, after checking the free disk)"
    )
    pull.add_argument("model", help="a Hugging Face repo id, or 20b / 120b")
    pull.add_argument(
        "--backend",
        default="auto",
        help="the backend to fetch for: a family or a name (default: the one gh.load would choose here)",
    )
    pull.add_argument("--dry-run", action="store_true", help="say what would be downloaded, download nothing")
    pull.set_defaults(handler=_run_pull)

    listing = subparsers.add_parser("list", help="the gpt-oss models on this disk, and what can run each here")
    listing.add_argument("--json", action="store_true", help="print the list as JSON")
    listing.set_defaults(handler=_run_list)

    remove = subparsers.add_parser("rm", help="delete a cached model (a name `gptoss-hub list` shows)")
    remove.add_argument("model")
    remove.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    remove.set_defaults(handler=_run_rm)

    ps = subparsers.add_parser("ps", help="what a running `gptoss-hub serve` has loaded, and what it is doing")
    ps.add_argument(
        "--url", default="http://127.0.0.1:8000", help="the server (default http://127.0.0.1:8000, serve's own)"
    )
    ps.add_argument("--json", action="store_true", help="print the server's status as JSON")
    ps.set_defaults(handler=_run_ps)


def _run_pull(args: argparse.Namespace, console: Console) -> int:
    from gptoss_hub.local_models import plan_pull, pull

    pull_plan = plan_pull(args.model, backend=args.backend)
    console.print(pull_plan.describe(), markup=False)
    for name, size in pull_plan.files:
        console.print(f"  {name}  {size / GIB:.2f} GiB", markup=False, style="dim")
    if args.dry_run:
        return 0
    folder = pull(pull_plan)
    console.print(f"ready: {folder}", markup=False)
    console.print(f"run it with: gptoss-hub chat --model {args.model} --backend {pull_plan.backend}", markup=False)
    return 0


def _run_list(args: argparse.Namespace, console: Console) -> int:
    from rich.table import Table

    from gptoss_hub.local_models import list_models

    models = list_models()
    if args.json:
        console.print_json(json.dumps([model.to_dict() for model in models]))
        return 0
    if not models:
        console.print("No gpt-oss models on this disk yet: `gptoss-hub pull 20b` downloads one.")
        return 0
    table = Table(title="gpt-oss models on this disk")
    for column in ("name", "cache", "format", "size", "runs here on"):
        table.add_column(column)
    for model in models:
        runs = ", ".join(model.runs_on) if model.runs_on else f"[red]nothing[/red] ({model.why_not})"
        table.add_row(model.name, model.cache, model.format, f"{model.size_bytes / GIB:.2f} GiB", runs)
    console.print(table)
    return 0


def _run_rm(args: argparse.Namespace, console: Console) -> int:
    from rich.prompt import Confirm

    from gptoss_hub.errors import InvalidRequestError
    from gptoss_hub.local_models import find_model, remove_model

    entry = find_model(args.model)  # no plan for each cached model: only its name, size and place are shown
    if not args.yes:
        if not sys.stdin.isatty():
            raise InvalidRequestError(
                f"Deleting {args.model} needs a confirmation: run it in a terminal, or pass --yes."
            )
        question = f"Delete {entry.name} ({entry.size_bytes / GIB:.2f} GiB at {entry.path})?"
        if not Confirm.ask(question, console=console, default=False):
            console.print("kept")
            return 1
    removed = remove_model(args.model)
    console.print(f"deleted {removed.name} ({removed.size_bytes / GIB:.2f} GiB freed)", markup=False)
    return 0


def _run_ps(args: argparse.Namespace, console: Console) -> int:
    import httpx
    from rich.table import Table

    from gptoss_hub.errors import BackendUnavailableError

    url = args.url.rstrip("/").removesuffix("/v1")
    try:
        response = httpx.get(f"{url}/status", timeout=5)
    except httpx.HTTPError as exc:
        raise BackendUnavailableError(
            f"No gptoss-hub server answers at {url} ({exc}). Start one with `gptoss-hub serve`, or pass --url."
        ) from exc
    if response.status_code != 200:
        raise BackendUnavailableError(
            f"{url}/status answered {response.status_code}: it is not a gptoss-hub server (or an older one)."
        )
    status: dict[str, Any] = response.json()
    if args.json:
        console.print_json(json.dumps(status))
        return 0
    table = Table(title=f"gptoss-hub serve at {url}")
    for column in ("model", "backend", "device", "memory", "in progress", "status", "up"):
        table.add_column(column)
    memory = status.get("resident_bytes")
    table.add_row(
        f"{status['model']} (as {status['served_as']})",
        status["backend"],
        f"{status['device']}, {status['dtype']}",
        f"{memory / GIB:.2f} GiB" if memory else "unknown",
        str(status["requests_in_progress"]),
        status["status"],
        f"{status['uptime_seconds']:.0f} s",
    )
    console.print(table)
    return 0
