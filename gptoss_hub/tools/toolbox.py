"""`Toolbox`: calling the Python functions the model asks for, sync or async, with checked arguments."""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gptoss_hub.errors import ToolError
from gptoss_hub.tools.functions import _VARIADIC, _type_hints
from gptoss_hub.tools.normalize import normalize_tools
from gptoss_hub.tools.spec import ToolSpec

__all__ = ["Toolbox"]

if TYPE_CHECKING:
    from pydantic import TypeAdapter, ValidationError

    from gptoss_hub.reply import ToolCall


class _InvalidArguments(Exception):
    """The model's arguments do not fit the function; the message is for the model."""


def _adapter(annotation: Any) -> TypeAdapter[Any] | None:
    from pydantic import TypeAdapter

    if annotation is inspect.Parameter.empty:
        return None
    try:
        return TypeAdapter(annotation)
    except Exception:  # a hand-written ToolSpec may wrap a function pydantic cannot validate: pass JSON through
        return None


def _validation_problems(name: str, exc: ValidationError) -> list[str]:
    problems = []
    for error in exc.errors(include_url=False):
        where = name + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error["loc"])
        problems.append(f"{where}: {error['msg']}")
    return problems


@dataclass(frozen=True)
class _Binder:
    """Maps the model's JSON arguments onto a Python signature, validating and converting them with pydantic."""

    parameters: tuple[inspect.Parameter, ...]
    adapters: Mapping[str, TypeAdapter[Any] | None]
    takes_extra: bool

    @classmethod
    def of(cls, function: Callable[..., Any]) -> _Binder:
        try:
            signature = inspect.signature(function)
        except (TypeError, ValueError):  # no readable signature: pass the arguments as they are
            return cls((), {}, takes_extra=True)
        hints = _type_hints(function)
        named = tuple(p for p in signature.parameters.values() if p.kind not in _VARIADIC)
        adapters = {p.name: _adapter(hints.get(p.name, p.annotation)) for p in named}
        takes_extra = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
        return cls(named, adapters, takes_extra)

    def _value(self, parameter: inspect.Parameter, value: Any, validate: bool) -> Any:
        adapter = self.adapters.get(parameter.name)
        return adapter.validate_python(value) if validate and adapter is not None else value

    def bind(self, arguments: Mapping[str, Any], *, validate: bool) -> tuple[list[Any], dict[str, Any]]:
        """Positional and keyword arguments for the call; raises `_InvalidArguments` listing every problem."""
        from pydantic import ValidationError

        known = {p.name for p in self.parameters}
        extra = {key: value for key, value in arguments.items() if key not in known}
        problems = [] if self.takes_extra else [f"{key}: unexpected keyword argument" for key in extra]
        values: dict[str, Any] = {}
        for parameter in self.parameters:
            if parameter.name not in arguments:
                if parameter.default is parameter.empty:
                    problems.append(f"{parameter.name}: missing required argument")
                continue
            try:
                values[parameter.name] = self._value(parameter, arguments[parameter.name], validate)
            except ValidationError as exc:
                problems.extend(_validation_problems(parameter.name, exc))
        if problems:
            raise _InvalidArguments("; ".join(problems))
        # Positional-only parameters cannot be passed by name; the model names them all the same.
        positional = [values.pop(p.name, p.default) for p in self.parameters if p.kind is p.POSITIONAL_ONLY]
        return positional, {**values, **extra}


def _error(message: str) -> str:
    return json.dumps({"error": message})


def _result_text(result: Any) -> str:
    """What the model reads: a string as is, anything else as JSON (models, dataclasses, enums, dates too)."""
    from pydantic_core import to_jsonable_python

    if isinstance(result, str):
        return result
    return json.dumps(to_jsonable_python(result, fallback=str))


async def _awaited(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


def _run_to_completion(awaitable: Awaitable[Any]) -> Any:
    """The result of an async tool, from synchronous code.

    With no event loop running in this thread the coroutine gets a fresh one. Inside a running loop (a
    notebook, an async handler calling `Toolbox.call`) `asyncio.run` refuses, so the coroutine runs on its
    own loop in a worker thread while this thread waits; async callers should use `Toolbox.acall`.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_awaited(awaitable))
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, _awaited(awaitable)).result()


def _unparsed_arguments(call: ToolCall) -> str:
    return _error(f"{call.error}; call {call.name} again with a JSON object")


class Toolbox:
    """Python functions the hub may call on the model's behalf (`Model.run`, `gptoss-hub chat --tool`).

    With `validate` (the default) the model's arguments are checked against each function's type hints
    and converted (JSON objects into pydantic models and dataclasses, strings into enums) before the call;
    arguments that do not fit come back to the model as an error result, with pydantic's message.
    """

    def __init__(self, tools: Sequence[Callable[..., Any] | ToolSpec], *, validate: bool = True):
        self.specs = normalize_tools(tools)
        missing = [s.name for s in self.specs if s.function is None]
        if missing:
            raise ToolError(f"Tools {missing} have no Python function to call; pass the functions themselves.")
        self.validate = validate
        self._functions = {s.name: s.function for s in self.specs if s.function is not None}
        self._binders = {name: _Binder.of(function) for name, function in self._functions.items()}

    def _prepare(
        self, name: str, arguments: Mapping[str, Any] | None
    ) -> str | tuple[Callable[..., Any], list[Any], dict[str, Any]]:
        """The function and its arguments, or the error result that tells the model what went wrong."""
        function = self._functions.get(name)
        if function is None:
            return _error(f"unknown tool {name!r}; available: {list(self._functions)}")
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, Mapping):
            return _error(f"the arguments of {name} must be a JSON object, got {type(arguments).__name__}")
        try:
            args, kwargs = self._binders[name].bind(arguments, validate=self.validate)
        except _InvalidArguments as exc:
            return _error(f"invalid arguments for {name}: {exc}. Call {name} again with arguments that fit it.")
        return function, args, kwargs

    def call(self, name: str, arguments: Mapping[str, Any] | None) -> str:
        """Call tool `name` and return its result as the text the model reads (JSON unless already a string).

        `async def` tools are run to completion (in a worker thread when this thread already runs an event
        loop). A tool that raises is reported to the model as `{"error": ...}` rather than ending the chat,
        so the model can recover; an unknown name or arguments that do not fit are reported the same way.
        """
        prepared = self._prepare(name, arguments)
        if isinstance(prepared, str):
            return prepared
        function, args, kwargs = prepared
        try:
            result = function(*args, **kwargs)
            if inspect.isawaitable(result):
                result = _run_to_completion(result)
        except Exception as exc:
            return _error(f"{type(exc).__name__}: {exc}")
        return _result_text(result)

    async def acall(self, name: str, arguments: Mapping[str, Any] | None) -> str:
        """`call` for async callers: `async def` tools are awaited, plain ones run in a worker thread.

        The thread keeps a slow synchronous tool from stalling the event loop.
        """
        prepared = self._prepare(name, arguments)
        if isinstance(prepared, str):
            return prepared
        function, args, kwargs = prepared
        try:
            if inspect.iscoroutinefunction(function):
                result = await function(*args, **kwargs)
            else:
                result = await asyncio.to_thread(function, *args, **kwargs)
                if inspect.isawaitable(result):  # e.g. an object whose `__call__` is async
                    result = await result
        except Exception as exc:
            return _error(f"{type(exc).__name__}: {exc}")
        return _result_text(result)

    def answer(self, call: ToolCall) -> dict[str, Any]:
        """Run a call the model made and return the `tool` message that carries its result."""
        result = _unparsed_arguments(call) if call.arguments is None else self.call(call.name, call.arguments)
        return call.result_message(result)

    async def aanswer(self, call: ToolCall) -> dict[str, Any]:
        """`answer` for async callers (see `acall`)."""
        result = _unparsed_arguments(call) if call.arguments is None else await self.acall(call.name, call.arguments)
        return call.result_message(result)
