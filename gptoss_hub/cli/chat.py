"""`gptoss-hub chat`: a one-shot prompt or an interactive session, streamed, with tools.

Reasoning streams dimmed, the answer plainly. When the model calls a tool the CLI shows the call,
runs it (a Python function, the builtin python tool's sandbox, or the browser), shows its result and lets
the model continue until it answers; the browser's citations show as links.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from gptoss_hub.demo_tools import DEMO_TOOLS
from gptoss_hub.errors import GptOssHubError, InvalidRequestError, ToolError
from gptoss_hub.events import (
    ContentDelta,
    Done,
    ReasoningDelta,
    ToolCallStarted,
)
from gptoss_hub.reply import Reply
from gptoss_hub.tools import Toolbox

if TYPE_CHECKING:
    from gptoss_hub.tools.browser import Browser
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
        choices=("python", "browser"),
        help="a builtin tool: python runs the model's code in a sandboxed, stateful session; browser searches "
        "and reads pages from --search (repeatable)",
    )
    parser.add_argument(
        "--search",
        default=None,
        metavar="SOURCE",
        help="where --builtin browser searches: local:DIR (a folder of documents, offline), searxng:URL (a SearXNG "
        "instance), exa or youcom (hosted, with EXA_API_KEY or YDC_API_KEY) or fixture (a small test web)",
    )
    parser.add_argument("--system", help="developer instructions for the model")
    parser.add_argument("--max-tokens", type=int, default=None)
    parser.add_argument("--temperature", type=float, default=None, help="default: 1.0, or 0 for the tiny models")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--load", type=Path, default=None, metavar="FILE", help="resume a conversation that /save wrote to FILE"
    )
    parser.add_argument(
        "--verbose", action="store_true", help="show what the runtime logs while loading and generating (on stderr)"
    )
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

    def page(self, view: str) -> None:
        """A browser result: its header line, and how many lines it showed the model."""
        first, *rest = view.splitlines() or [""]
        more = f"  ({len(rest)} more lines shown to the model)" if rest else ""
        self.console.print(f"← {first}{more}", style="green", markup=False, highlight=False)
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
    browser: Browser | None = None,
) -> Reply:
    """Stream one user turn to its end, running tools in between; appends every message to `messages`.

    With a browser, citations in the answer are shown as links as they stream."""
    from gptoss_hub.tools.browser.citations import CitationStream

    for _ in range(_MAX_TOOL_TURNS):
        reply = None
        cited = CitationStream(browser.source_at) if browser is not None else None
        for event in model.stream(messages, tools=toolbox.specs if toolbox else None, **options):
            if isinstance(event, Done):
                reply = event.reply
            elif isinstance(event, ContentDelta) and cited is not None:
                printer.write(cited.feed(event.text)[0], "content")
            else:
                printer.event(event)
        assert reply is not None
        if cited is not None:
            printer.write(cited.finish()[0], "content")
        messages.append(reply.message)
        if not reply.tool_calls or (toolbox is None and python is None and browser is None):
            printer.end_turn(reply)
            return reply
        for call in reply.tool_calls:
            if call.kind == "browser":
                printer.tool_call(call.name, call.raw_arguments)
                view = browser.call(call.name, call.raw_arguments) if browser else "The browser is not available here."
                printer.page(view)
                messages.append(call.result_message(view))
                continue
            if call.kind == "python":
                printer.python_call(call.code or "")
                result = python.run(call.code or "").text if python else "The python tool is not available here."
                tool_message = call.result_message(result)
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


def _browser(args: argparse.Namespace) -> Browser | None:
    """The browser `--builtin browser --search SOURCE` asks for, if it does."""
    if "browser" not in args.builtin:
        if args.search is not None:
            raise InvalidRequestError("--search is where --builtin browser searches: add --builtin browser.")
        return None
    if args.search is None:
        raise InvalidRequestError(
            "--builtin browser needs --search: local:DIR (a folder of documents), searxng:URL or fixture."
        )
    from gptoss_hub.tools.browser.sources import browser_for

    return browser_for(args.search)


def run_chat(args: argparse.Namespace, console: Console) -> int:
    """Run `gptoss-hub chat` with parsed arguments; returns the exit status."""
    from gptoss_hub.loading import load

    functions = [load_tool(ref) for ref in args.tool]
    if args.tools:
        functions.extend(DEMO_TOOLS[args.tools])
    toolbox = Toolbox(functions) if functions else None
    browser = _browser(args)  # before loading: a wrong --search fails at once
    if args.verbose:
        # The runtimes' own output (llama.cpp's log, captured while loading) goes to the hub's loggers.
        logging.basicConfig(level=logging.WARNING)
        logging.getLogger("gptoss_hub").setLevel(logging.DEBUG)
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
    if browser is not None:
        options["builtin_tools"] = ["browser"]
    if "python" in args.builtin:
        from gptoss_hub.tools.python import PythonSession

        options["builtin_tools"] = [*options.get("builtin_tools", ()), "python"]
        python = PythonSession()
    printer = _Printer(console, args.show_reasoning)
    messages: list[dict[str, Any]] = _loaded_conversation(args.load) if args.load else []
    with model, python or contextlib.nullcontext():
        if args.prompt is not None:
            messages.append({"role": "user", "content": args.prompt})
            reply = _answer(model, messages, toolbox, printer, options, python, browser)
            return 1 if reply.finish_reason == "error" else 0
        session = _Session(console, messages, options, toolbox, python, browser)
        console.print(
            f"Interactive chat{f' (resumed: {len(messages)} messages)' if messages else ''}: /help lists the "
            "commands, /exit or Ctrl-D quits.",
            style="dim",
        )
        while True:
            try:
                line = console.input("[bold]> [/bold]")
            except (EOFError, KeyboardInterrupt):
                console.print()
                return 0
            text = line.strip()
            if not text:
                continue
            if text.startswith("/"):
                if session.command(text) == "exit":
                    return 0
                continue
            messages.append({"role": "user", "content": line})
            try:
                _answer(model, messages, toolbox, printer, options, python, browser)
            except GptOssHubError as exc:
                console.print(f"error: {exc}", style="red", markup=False)


#: The interactive session's commands and what each does, for /help.
COMMANDS = {
    "/help": "list these commands",
    "/reset": "clear the history (and the python session and the browser's pages)",
    "/effort low|medium|high": "set the reasoning effort for the next replies",
    "/tools": "list the tools the model may call",
    "/save FILE": "write the conversation as JSON (resume it with `gptoss-hub chat --load FILE`)",
    "/exit": "quit (so do /quit and Ctrl-D)",
}


class _Session:
    """The interactive session's commands: lines starting with `/` are answered here, never sent to the model."""

    def __init__(
        self,
        console: Console,
        messages: list[dict[str, Any]],
        options: dict[str, Any],
        toolbox: Toolbox | None,
        python: PythonSession | None,
        browser: Browser | None,
    ):
        self.console, self.messages, self.options = console, messages, options
        self.toolbox, self.python, self.browser = toolbox, python, browser

    def command(self, text: str) -> str | None:
        """Run the command `text`; returns "exit" when the session should end."""
        name, _, argument = text.partition(" ")
        argument = argument.strip()
        if name in ("/exit", "/quit"):
            return "exit"
        if name == "/help":
            for usage, what in COMMANDS.items():
                self.console.print(f"  {usage:<26} {what}", markup=False)
        elif name == "/reset":
            self.messages.clear()
            if self.python is not None:
                self.python.restart()
            if self.browser is not None:
                self.browser.reset()
            self._say("history cleared")
        elif name == "/effort":
            if argument not in ("low", "medium", "high"):
                self._say(f"/effort takes low, medium or high (now {self.options['reasoning_effort']})", "yellow")
            else:
                self.options["reasoning_effort"] = argument
                self._say(f"reasoning effort: {argument}")
        elif name == "/tools":
            self._say(self._tools())
        elif name == "/save":
            self._save(argument)
        else:
            self._say(f"unknown command {name}: /help lists the commands", "yellow")
        return None

    def _tools(self) -> str:
        names = [spec.name for spec in self.toolbox.specs] if self.toolbox else []
        names += [name for name, on in (("python (builtin)", self.python), ("browser (builtin)", self.browser)) if on]
        return (
            "tools: " + ", ".join(names) if names else "no tools: add --tools demo, --tool MODULE:FUNCTION or --builtin"
        )

    def _save(self, argument: str) -> None:
        if not argument:
            self._say("/save takes a file name", "yellow")
            return
        path = Path(argument).expanduser()
        try:
            path.write_text(
                json.dumps({"messages": self.messages}, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
            )
        except OSError as exc:
            self._say(f"could not save to {path}: {exc}", "red")
            return
        self._say(f"saved {len(self.messages)} messages to {path}")

    def _say(self, text: str, style: str = "dim") -> None:
        self.console.print(text, style=style, markup=False, highlight=False)


def _loaded_conversation(path: Path) -> list[dict[str, Any]]:
    """The messages `/save` wrote to `path`, checked, for `chat --load`."""
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidRequestError(f"--load {path}: {exc}. Pass a file that /save wrote.") from exc
    messages = saved.get("messages") if isinstance(saved, dict) else None
    if not isinstance(messages, list) or not all(isinstance(m, dict) and "role" in m for m in messages):
        raise InvalidRequestError(f"--load {path}: not a conversation /save wrote (a 'messages' list of messages).")
    return messages
