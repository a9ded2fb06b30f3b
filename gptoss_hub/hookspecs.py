"""Every hook a gptoss_hub plugin can implement. Specifications only: no logic lives here.

A plugin is a module (or object) with functions decorated by `gptoss_hub.hookimpl`, registered under
the `gptoss_hub` entry-point group::

    [project.entry-points.gptoss_hub]
    my_runtime = "my_package.plugin"
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from gptoss_hub.dispatch import Candidate, Preferences
    from gptoss_hub.hardware import HardwareReport
    from gptoss_hub.plugins import BackendRegistry, SearchSourceRegistry
    from gptoss_hub.sources import ModelSpec

hookspec = pluggy.HookspecMarker("gptoss_hub")
#: The decorator plugins put on their hook implementations (re-exported as `gptoss_hub.hookimpl`).
hookimpl = pluggy.HookimplMarker("gptoss_hub")


@hookspec
def gptoss_hub_register_backends(registry: BackendRegistry) -> None:
    """Register backend classes with the hub.

    Called once per process, the first time backends are needed (never at import time).

    :param registry: call `registry.add(MyBackend)` for each `gptoss_hub.Backend` subclass the plugin
        provides. A duplicate or invalid backend raises `PluginError` naming the plugin.
    """


@hookspec
def gptoss_hub_rank_candidate(
    candidate: Candidate, spec: ModelSpec, report: HardwareReport, preferences: Preferences
) -> int | str | None:
    """Adjust how dispatch ranks one candidate backend, or veto it.

    Called for every candidate of every plan, after the backend's own `check()`.

    :param candidate: the backend considered, its rank and its rejection reasons so far.
    :param spec: the model being planned.
    :param report: the hardware the plan is for (possibly a recorded one, not this machine).
    :param preferences: what the caller asked for (`serving`, `context_tokens`, …).
    :return: `None` for no opinion, an `int` added to the candidate's rank, or a `str`: a reason that
        vetoes the candidate, shown to the user like any other rejection.
    """


@hookspec
def gptoss_hub_register_search_sources(registry: SearchSourceRegistry) -> None:
    """Register search sources for the builtin browser (`--search NAME` or `--search NAME:ARGUMENT`).

    Called once per process, the first time a search source is named.

    :param registry: call `registry.add(name, open_source, description)` for each source the plugin
        provides: `open_source(argument)` gets what follows `NAME:` (an empty string when nothing does) and
        returns a `(search backend, page fetcher)` pair (`gptoss_hub.tools.browser.pages`). A name taken
        already raises `PluginError` naming both plugins.
    """
