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
    from gptoss_hub.plugins import BackendRegistry

hookspec = pluggy.HookspecMarker("gptoss_hub")


@hookspec
def gptoss_hub_register_backends(registry: BackendRegistry) -> None:
    """Register backend classes with the hub.

    Called once per process, the first time backends are needed (never at import time).

    :param registry: call `registry.add(MyBackend)` for each `gptoss_hub.Backend` subclass the plugin
        provides. A duplicate or invalid backend raises `PluginError` naming the plugin.
    """
