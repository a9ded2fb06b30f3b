"""Plugin loading and the backend registry: the one place that calls `pm.hook`.

Plugins load lazily, once, each inside its own error handling: a plugin that fails to import or to
register is reported by name (`plugin_errors()`, `gptoss-hub doctor`) and never stops the others.
Set `GPTOSS_HUB_STRICT_PLUGINS=1` to re-raise instead, which is what a plugin author wants.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pluggy

from gptoss_hub import hookspecs
from gptoss_hub.engine import Backend
from gptoss_hub.errors import BackendUnavailableError, PluginError
from gptoss_hub.hookspecs import hookimpl

__all__ = [
    "ENTRY_POINT_GROUP",
    "BackendRegistry",
    "PluginFailure",
    "SearchSourceRegistry",
    "backend_registry",
    "hookimpl",
    "plugin_errors",
    "search_sources",
]

ENTRY_POINT_GROUP = "gptoss_hub"
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that could not be used, and why."""

    plugin: str
    stage: str  # "import", "register" or "rank"
    error: str


class BackendRegistry:
    """The backends plugins registered, validated as they are added."""

    def __init__(self) -> None:
        self._backends: dict[str, Backend] = {}
        self._owners: dict[str, str] = {}
        self._current_plugin = "<direct>"
        #: The plugins that could not be used while this registry was built (see `plugin_errors()`).
        self.failures: list[PluginFailure] = []

    def add(self, backend: type[Backend] | Backend) -> None:
        """Register a `Backend` subclass (or instance). Names must be unique across plugins."""
        instance = backend() if isinstance(backend, type) else backend
        if not isinstance(instance, Backend):
            raise PluginError(
                f"Plugin {self._current_plugin!r} registered {backend!r}, which is not a gptoss_hub.Backend subclass."
            )
        name = getattr(instance, "name", None)
        if not isinstance(name, str) or not name:
            raise PluginError(f"Plugin {self._current_plugin!r} registered {type(instance).__name__} without a `name`.")
        if name in self._backends:
            raise PluginError(
                f"Plugin {self._current_plugin!r} registered backend {name!r}, already registered by plugin "
                f"{self._owners[name]!r}. Backend names must be unique; rename one."
            )
        self._backends[name] = instance
        self._owners[name] = self._current_plugin

    def names(self) -> list[str]:
        """Registered backend names, highest rank first."""
        return [b.name for b in self.all()]

    def all(self) -> list[Backend]:
        """Registered backends, highest rank first (ties by name, so the order is stable)."""
        return sorted(self._backends.values(), key=lambda b: (-b.rank, b.name))

    def get(self, name: str) -> Backend:
        """The backend called `name`; raises `BackendUnavailableError` listing the known ones, and the
        plugins that failed to load (one of them may be the one that provides it)."""
        try:
            return self._backends[name]
        except KeyError:
            failed = [f for f in self.failures if f.stage in ("import", "register")]
            if failed:
                broken = "; ".join(f"{f.plugin!r} failed to {f.stage}: {f.error}" for f in failed)
                hint = f"Installed plugins that failed to load: {broken}. See `gptoss-hub doctor`."
            else:
                hint = "Backends come from extras (`pip install 'gptoss-hub[vllm]'`) or plugin packages."
            raise BackendUnavailableError(
                f"No backend named {name!r}. Installed backends: {', '.join(self.names()) or 'none'}. {hint}"
            ) from None

    def owner(self, name: str) -> str:
        """The plugin that registered backend `name`."""
        return self._owners[name]


#: Opens a search source from what follows its name in `--search NAME:ARGUMENT`: (search backend, fetcher).
OpenSource = Callable[[str], tuple[Any, Any]]


class SearchSourceRegistry:
    """The browser's search sources by name: the hub's own and those plugins registered."""

    def __init__(self) -> None:
        self._sources: dict[str, tuple[OpenSource, str, str]] = {}
        self._current_plugin = "<hub>"

    def add(self, name: str, open_source: OpenSource, description: str) -> None:
        """Register `open_source` as `name` (letters, digits, '-' and '_'; unique across plugins)."""
        if not isinstance(name, str) or not name.replace("-", "").replace("_", "").isalnum():
            raise PluginError(f"Plugin {self._current_plugin!r} registered a search source named {name!r}.")
        if not callable(open_source):
            raise PluginError(f"Plugin {self._current_plugin!r} registered search source {name!r} without a callable.")
        if name in self._sources:
            raise PluginError(
                f"Plugin {self._current_plugin!r} registered search source {name!r}, already registered by "
                f"{self._sources[name][2]!r}."
            )
        self._sources[name] = (open_source, description, self._current_plugin)

    def names(self) -> list[str]:
        """Registered source names, in registration order (the hub's first)."""
        return list(self._sources)

    def describe(self) -> dict[str, str]:
        """Each source's name and what it is."""
        return {name: description for name, (_, description, _) in self._sources.items()}

    def open(self, name: str, argument: str) -> tuple[Any, Any]:
        """The (search backend, fetcher) of source `name`; raises `KeyError` for an unknown name."""
        return self._sources[name][0](argument)

    def owner(self, name: str) -> str:
        """The plugin that registered source `name` ("<hub>" for the hub's own)."""
        return self._sources[name][2]


class _Plugins:
    """The lazily built plugin manager, registry and failures."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.registry: BackendRegistry | None = None
        self.manager: pluggy.PluginManager | None = None
        self.failures: list[PluginFailure] = []
        self.search_sources: SearchSourceRegistry | None = None

    def load(self) -> BackendRegistry:
        with self.lock:
            if self.registry is None:
                self.registry = self._build()
            return self.registry

    def _fail(self, plugin: str, stage: str, exc: BaseException) -> None:
        if os.environ.get("GPTOSS_HUB_STRICT_PLUGINS", "") not in ("", "0"):
            raise PluginError(f"Plugin {plugin!r} failed to {stage}: {exc}") from exc
        self.failures.append(PluginFailure(plugin, stage, f"{type(exc).__name__}: {exc}{_where(exc)}"))
        _log.warning("gptoss_hub plugin %r failed to %s and is skipped: %s", plugin, stage, exc)

    def _build(self) -> BackendRegistry:
        manager = pluggy.PluginManager("gptoss_hub")
        manager.add_hookspecs(hookspecs)
        for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            if manager.has_plugin(entry_point.name):
                continue  # the same distribution seen twice on sys.path
            try:
                plugin = entry_point.load()
                _check_hook_names(plugin)
                manager.register(plugin, name=entry_point.name)
            except Exception as exc:
                self._fail(entry_point.name, "import", exc)
        registry = BackendRegistry()
        # Each implementation is called on its own (not via `pm.hook`, which stops at the first
        # exception) so one broken plugin cannot hide the backends of the others.
        for implementation in manager.hook.gptoss_hub_register_backends.get_hookimpls():
            registry._current_plugin = implementation.plugin_name
            before = len(registry.names())
            try:
                implementation.function(registry=registry)
                if len(registry.names()) == before:
                    raise PluginError("its gptoss_hub_register_backends hook registered no backend")
            except Exception as exc:
                self._fail(implementation.plugin_name, "register", exc)
        registry._current_plugin = "<direct>"
        registry.failures = self.failures
        self.manager = manager
        return registry

    def load_search_sources(self) -> SearchSourceRegistry:
        self.load()
        with self.lock:
            if self.search_sources is None:
                from gptoss_hub.tools.browser.sources import register_builtin_sources

                sources = SearchSourceRegistry()
                register_builtin_sources(sources)
                assert self.manager is not None
                for implementation in self.manager.hook.gptoss_hub_register_search_sources.get_hookimpls():
                    sources._current_plugin = implementation.plugin_name
                    try:
                        implementation.function(registry=sources)
                    except Exception as exc:  # one broken plugin hides no other source
                        self._fail(implementation.plugin_name, "register", exc)
                self.search_sources = sources
            return self.search_sources


#: The hooks a plugin may implement (`gptoss_hub.hookspecs`).
_HOOK_NAMES = ("gptoss_hub_register_backends", "gptoss_hub_rank_candidate", "gptoss_hub_register_search_sources")


def _check_hook_names(plugin: object) -> None:
    """Raise `PluginError` for what pluggy would silently ignore: a hook implementation whose name matches no
    hook (a misspelling), a hook-named function without `@hookimpl`, or no hook implementation at all."""
    implemented = []
    for attribute in dir(plugin):
        if not attribute.startswith("gptoss_hub_"):
            continue
        marked = hasattr(getattr(plugin, attribute, None), "gptoss_hub_impl")
        if attribute not in _HOOK_NAMES:
            if marked or callable(getattr(plugin, attribute, None)):
                raise PluginError(f"{attribute} matches no hook; the hooks are {', '.join(_HOOK_NAMES)}")
        elif not marked:
            raise PluginError(f"{attribute} lacks @gptoss_hub.hookimpl, so it would never be called")
        else:
            implemented.append(attribute)
    if not implemented:
        raise PluginError(f"it implements none of the hooks ({', '.join(_HOOK_NAMES)}) with @gptoss_hub.hookimpl")


def _where(exc: BaseException) -> str:
    """ " (at file:line)" for the innermost frame of a plugin's error, so its author can go straight there."""
    traceback = exc.__traceback__
    if traceback is None or isinstance(exc, PluginError):  # the hub's own finding: its message says it all
        return ""
    while traceback.tb_next is not None:
        traceback = traceback.tb_next
    return f" (at {traceback.tb_frame.f_code.co_filename}:{traceback.tb_lineno})"


_PLUGINS = _Plugins()


def backend_registry() -> BackendRegistry:
    """Every registered backend; plugins are loaded on the first call."""
    return _PLUGINS.load()


def rank_opinions(**kwargs: Any) -> list[tuple[str, int | str]]:
    """Each plugin's `gptoss_hub_rank_candidate` answer for one candidate, as (plugin name, answer).

    A plugin whose hook raises or answers with something other than `None`, an `int` or a `str` is
    reported like a plugin that failed to register, and its answer ignored.
    """
    _PLUGINS.load()
    assert _PLUGINS.manager is not None
    opinions: list[tuple[str, int | str]] = []
    for implementation in _PLUGINS.manager.hook.gptoss_hub_rank_candidate.get_hookimpls():
        try:
            answer = implementation.function(**kwargs)
            if answer is not None and (isinstance(answer, bool) or not isinstance(answer, (int, str))):
                raise TypeError(f"gptoss_hub_rank_candidate returned {answer!r}; expected None, an int or a str")
        except Exception as exc:
            _PLUGINS._fail(implementation.plugin_name, "rank", exc)
            continue
        if answer is not None:
            opinions.append((implementation.plugin_name, answer))
    return opinions


def search_sources() -> SearchSourceRegistry:
    """Every search source for the builtin browser; plugins are loaded on the first call."""
    return _PLUGINS.load_search_sources()


def plugin_errors() -> list[PluginFailure]:
    """Plugins that failed to import or register (after `backend_registry()` has run)."""
    _PLUGINS.load()
    return list(_PLUGINS.failures)


def _reset_for_tests() -> None:
    """Forget loaded plugins so the next call loads them again."""
    global _PLUGINS
    _PLUGINS = _Plugins()
