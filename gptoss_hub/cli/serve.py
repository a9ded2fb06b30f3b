"""`gptoss-hub serve --model M --backend B --host 127.0.0.1 --port 8000 [--api-key KEY] [--search SOURCE]
[--option K=V ...]`."""

from __future__ import annotations

import argparse
import os
import signal
import time
from pathlib import Path
from typing import Any

from rich.console import Console

__all__ = ["add_serve_parser", "api_key", "backend_options", "reasoning_seal", "run_serve"]


def add_serve_parser(subparsers: Any) -> None:
    """Register the `serve` sub-command."""
    parser = subparsers.add_parser("serve", help="serve a model through OpenAI's Chat Completions and Responses APIs")
    parser.add_argument("--model", default="tiny", help="alias, folder, .gguf file or repo id (default: tiny)")
    parser.add_argument("--backend", default="auto", help="auto (prefers batching backends), a family or a name")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--api-key",
        default=os.environ.get("GPTOSS_HUB_API_KEY"),
        help="require this bearer key ($GPTOSS_HUB_API_KEY; a key given here shows in `ps`: prefer --api-key-file)",
    )
    parser.add_argument("--api-key-file", default=None, help="require the bearer key this file holds (first line)")
    parser.add_argument(
        "--reasoning-key-file",
        default=None,
        help="seal the reasoning clients keep (Responses' include: reasoning.encrypted_content) with a key derived "
        "from this file's secret, so every replica and a restarted server can open it "
        "($GPTOSS_HUB_REASONING_KEY; default: a random key for this process)",
    )
    parser.add_argument("--served-model-name", default=None, help="the name clients use (default: the model's)")
    parser.add_argument(
        "--search",
        default=None,
        metavar="SOURCE",
        help="let requests use web search (Responses' web_search tool, Chat Completions' web_search_options), run "
        "by the server's browser over SOURCE: local:DIR (a folder of documents, offline), searxng:URL (a SearXNG "
        "instance), exa or youcom (hosted, with EXA_API_KEY or YDC_API_KEY) or fixture (a small test web)",
    )
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a backend option for gh.load, e.g. dtype=float32 or tensor_parallel_size=2 (repeatable; "
        "values are read as JSON when they parse, else as text)",
    )
    parser.set_defaults(handler=run_serve)


def backend_options(pairs: list[str]) -> dict[str, Any]:
    """`KEY=VALUE` pairs as keyword arguments: `2` is an int, `true` a bool, `float32` a string."""
    import json

    from gptoss_hub.errors import InvalidRequestError

    options: dict[str, Any] = {}
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not separator or not key:
            raise InvalidRequestError(f"--option takes KEY=VALUE, got {pair!r}.")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


def api_key(args: argparse.Namespace) -> str | None:
    """The key from `--api-key-file`, else `--api-key` or `$GPTOSS_HUB_API_KEY`; an empty or unreadable file
    is an error, never an open server."""
    from gptoss_hub.errors import InvalidRequestError

    if args.api_key_file is None:
        return args.api_key or None
    try:
        lines = Path(args.api_key_file).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InvalidRequestError(f"--api-key-file {args.api_key_file}: {exc.strerror}.") from exc
    key = lines[0].strip() if lines else ""
    if not key:
        raise InvalidRequestError(f"--api-key-file {args.api_key_file} is empty: write the key on its first line.")
    return key


def reasoning_seal(args: argparse.Namespace) -> Any:
    """The `ReasoningSeal` of `--reasoning-key-file` (its whole content is the secret), else of
    `$GPTOSS_HUB_REASONING_KEY`, else a random one; an empty or unreadable file is an error."""
    from gptoss_hub.errors import InvalidRequestError
    from gptoss_hub.server.sealed_reasoning import ReasoningSeal

    if args.reasoning_key_file is None:
        return ReasoningSeal.from_environment()
    try:
        secret = Path(args.reasoning_key_file).read_bytes().strip()
    except OSError as exc:
        raise InvalidRequestError(f"--reasoning-key-file {args.reasoning_key_file}: {exc.strerror}.") from exc
    if len(secret) < 16:
        raise InvalidRequestError(
            f"--reasoning-key-file {args.reasoning_key_file} holds {len(secret)} bytes; write a secret of at least "
            "16 (for example: python -c 'import secrets; print(secrets.token_urlsafe(32))')."
        )
    return ReasoningSeal(secret)


def run_serve(args: argparse.Namespace, console: Console) -> int:
    """Load the model (planning for serving), then serve it with uvicorn until interrupted."""
    import uvicorn

    import gptoss_hub as gh
    from gptoss_hub.server import create_app
    from gptoss_hub.tools.browser.sources import search_source

    search = search_source(args.search) if args.search is not None else None  # before loading: fails at once
    seal = reasoning_seal(args)
    model = gh.load(args.model, backend=args.backend, serving=True, **backend_options(args.option))
    # uvicorn shuts down on SIGTERM, then raises the signal again under the handler it found. Python's
    # default one ends the process on the spot, before `model.close()`, and a backend's processes (vLLM's
    # engine) would outlive the server; this one exits through `finally` instead.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        if model.info.details.get("worker_node"):
            return _run_worker_node(model, console)
        app = create_app(
            model, model_name=args.served_model_name, api_key=api_key(args), search=search, reasoning_seal=seal
        )
        where = f"http://{args.host}:{args.port}/v1"
        console.print(f"serving {model.info.model} on {model.info.backend} at {where}", markup=False)
        if args.search is not None:
            console.print(f"web search reads {args.search}", markup=False)
        uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    finally:
        model.close()
    return 0


def _run_worker_node(model: Any, console: Console) -> int:
    """A follower node of a multi-node run (`--option node_rank=N`): it serves no requests, so it holds its
    share of the model until the head node stops or it is interrupted."""
    details = model.info.details
    console.print(
        f"worker node {details['node_rank']} of {details['nnodes']}: holding its part of {model.info.model} for "
        f"the head node at {details['head']}, which serves the requests",
        markup=False,
    )
    while model.info.status == "ready":
        time.sleep(1.0)
    console.print(f"worker node stopping: {model.info.status}", markup=False)
    return 0


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)
