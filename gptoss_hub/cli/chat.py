"""`gptoss-hub chat`: a one-shot prompt or an interactive session, streamed, with tools.

Reasoning streams dimmed, the answer plainly. When the model calls a tool the CLI shows the call,
runs the Python function, shows its result and lets the model continue until it answers.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.console import Console

from gptoss_hub.demo_tools import DEMO_TOOLS
from gptoss_hub.errors import GptOssHubError, ToolError
from gptoss_hub.events import (
    ContentDelta,
    Done,
    ReasoningDelta,
    ToolCallStarted,
)
from gptoss_hub.reply import Reply
from gptoss_hub.tools import Toolbox

if TYPE_CHECKING:
    from gptoss_hub.tools.python import PythonSession

__all__ = ["add_chat_parser", "load_tool", "run_chat"]

_MAX_TOOL_TURNS = 8


def load_tool(reference: str) -> Callable[..., Any]:
    """Import `MODULE:FUNCTION` and return the function."""
    module_name, _, attribute = reference.partition(":")
    if not module_name or not attribute:
        raise ToolError(f"--tool takes MODULE:FUNCTION (e.g. mypackage.tools:get_weather), got {reference!r}.")
    try:
        target: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise ToolError(f"--tool {reference}: {exc}. Check that the module is importable from here.") from exc
    if not callable(target):
        raise ToolError(f"--tool {reference} is not a function.")
    return target


def add_chat_parser(subparsers: Any) -> None:
    """Register the `chat` sub-command."""
    parser = subparsers.add_parser("chat", help="chat with a model (one prompt, or interactive without one)")
    parser.add_argument("prompt", nargs="?", help="ask this and exit; without it, start an interactive session")
    parser.add_argument(
        "--model", default="tiny", help="alias, folder, .gguf file, repo id or endpoint (default: tiny)"
    )
    parser.add_argument("--backend", default="auto", help="auto, a family (transformers) or a full backend name")
    parser.add_argument("--reasoning-effort", default="medium", choices=("low", "medium", "high"))
    parser.add_argument(
        "--show-reasoning",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="stream the model's reasoning, dimmed (default: on)",
    )
    parser.add_argument(
        "--tool", action="append", default=[], metavar="MODULE:FUNCTION", help="a Python tool (repeatable)"
    )
    parser.add_argument(
        "--tools", choices=sorted(DEMO_TOOLS), help="a built-in tool set: demo = an offline get_weather"
    )
    parser.add_argument(
        "--builtin",
        action="append",
        default=[],
        choices=("python",),
        help="a builtin tool: python runs the model's code in a sandboxed, stateful session (repeatable)",
    )
    parser.add_argument("--system", help="developer instructions for the model")
    parser.add_argument("--max-tokens", type=int, default=None)
    parser.add_argument("--temperature", type=float, default=None, help="default: 1.0, or 0 for the tiny models")
    parser.add_argument("--seed", type=int, default=None)
    parser.set_defaults(handler=run_chat)


class _Printer:
    """Draws stream events: reasoning dimmed, answer plain, tool calls and results marked."""

    def __init__(self, console: Console, show_reasoning: bool):
        self.console = console
        self.show_reasoning = show_reasoning
        self._section: str | None = None

    def _enter(self, section: str) -> None:
        if self._section != section:
            if self._section is not None:
                self.console.print()
            self._section = section

    def write(self, text: str, section: str, style: str | None = None) -> None:
        self._enter(section)
        self.console.print(text, end="", style=style, markup=False, highlight=False, soft_wrap=True)

    def event(self, event: Any) -> None:
        if isinstance(event, ReasoningDelta) and self.show_reasoning:
            self.write(event.text, "reasoning", "dim italic")
        elif isinstance(event, ContentDelta):
            self.write(event.text, "content")
        elif isinstance(event, ToolCallStarted):
            self._enter("tool")

    def tool_call(self, name: str, raw_arguments: str) -> None:
        self._enter("tool")
        self.console.print(f"→ {name}({raw_arguments})", style="bold cyan", markup=False, highlight=False)
        self._section = None

    def python_call(self, code: str) -> None:
        self._enter("tool")
        self.console.print("→ python", style="bold cyan", markup=False, highlight=False)
        for line in code.splitlines() or [""]:
            self.console.print(f"  {line}", style="cyan", markup=False, highlight=False)
        self._section = None

    def tool_result(self, result: str) -> None:
        self.console.print(f"← {result}", style="green", markup=False, highlight=False)
        self._section = None

    def end_turn(self, reply: Reply) -> None:
        if self._section is not None:
            self.console.print()
        self._section = None
        if reply.finish_reason == "length":
            self.console.print("[stopped: max tokens reached]", style="yellow", markup=False)
        elif reply.finish_reason == "error":
            message = reply.error.message if reply.error else "unknown"
            self.console.print(f"[model output was not valid harmony: {message}]", style="red", markup=False)


def _answer(
    model: Any,
    messages: list[dict[str, Any]],
    toolbox: Toolbox | None,
    printer: _Printer,
    options: dict[str, Any],
    python: PythonSession | None = None,
) -> Reply:
    """Stream one user turn to its end, running tools in between; appends every message to `messages`."""
    for _ in range(_MAX_TOOL_TURNS):
        reply = None
        for event in model.stream(messages, tools=toolbox.specs if toolbox else None, **options):
            if isinstance(event, Done):
                reply = event.reply
            else:
                printer.event(event)
        assert reply is not None
        messages.append(reply.message)
        if not reply.tool_calls or (toolbox is None and python is None):
            printer.end_turn(reply)
            return reply
        for call in reply.tool_calls:
            if call.kind == "python":
                printer.python_call(call.code or "")
                result = python.run(call.code or "").text if python else "The python tool is not available here."
                tool_message = {"role": "tool", "name": "python", "tool_call_id": call.id, "content": result}
            else:
                printer.tool_call(call.name, call.raw_arguments)
                tool_message = (
                    toolbox.answer(call) if toolbox else {"role": "tool", "name": call.name, "content": "No such tool."}
                )
            printer.tool_result(tool_message["content"])
            messages.append(tool_message)
    printer.console.print(f"[stopped after {_MAX_TOOL_TURNS} tool rounds]", style="yellow", markup=False)
    assert reply is not None  # every round above sets it
    return reply


def run_chat(args: argparse.Namespace, console: Console) -> int:
    """Run `gptoss-hub chat` with parsed arguments; returns the exit status."""
    from gptoss_hub.loading import load

    functions = [load_tool(ref) for ref in args.tool]
    if args.tools:
        functions.extend(DEMO_TOOLS[args.tools])
    toolbox = Toolbox(functions) if functions else None
    with console.status(f"Loading {args.model}…", spinner="dots"):
        model = load(args.model, backend=args.backend)
    console.print(f"{model.info.model} on {model.info.backend} ({model.info.device}, {model.info.dtype})", style="dim")
    options: dict[str, Any] = {
        "reasoning_effort": args.reasoning_effort,
        "max_tokens": args.max_tokens,
        "temperature": args.temperature,
        "seed": args.seed,
        "instructions": args.system,
    }
    python = None
    if "python" in args.builtin:
        from gptoss_hub.tools.python import PythonSession

        options["builtin_tools"] = ["python"]
        python = PythonSession()
    printer = _Printer(console, args.show_reasoning)
    messages: list[dict[str, Any]] = []
    with model, python or contextlib.nullcontext():
        if args.prompt is not None:
            messages.append({"role": "user", "content": args.prompt})
            reply = _answer(model, messages, toolbox, printer, options, python)
            return 1 if reply.finish_reason == "error" else 0
        console.print(
            "Interactive chat: /reset clears the history (and the python session), /exit or Ctrl-D quits.", style="dim"
        )
        while True:
            try:
                line = console.input("[bold]> [/bold]")
            except (EOFError, KeyboardInterrupt):
                console.print()
                return 0
            if line.strip() in ("/exit", "/quit"):
                return 0
            if line.strip() == "/reset":
                messages.clear()
                if python is not None:
                    python.restart()
                continue
            if not line.strip():
                continue
            messages.append({"role": "user", "content": line})
            try:
                _answer(model, messages, toolbox, printer, options, python)
            except GptOssHubError as exc:
                console.print(f"error: {exc}", style="red", markup=False)
