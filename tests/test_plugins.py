import importlib.metadata

import pytest

from gptoss_hub import plugins
from gptoss_hub.engine import Backend
from gptoss_hub.errors import BackendUnavailableError, PluginError


@pytest.fixture
def fresh_plugins():
    plugins._reset_for_tests()
    yield
    plugins._reset_for_tests()


def test_builtin_and_third_party_backends_come_through_entry_points(fresh_plugins):
    registry = plugins.backend_registry()
    assert registry.owner("transformers/cpu") == "transformers"
    assert registry.owner("echo") == "echo"  # tests/plugins/gptoss_hub_echo, installed by CI
    assert registry.names()[0] == "transformers/mxfp4+fa3"  # highest rank first
    assert plugins.plugin_errors() == []


class _EP:
    def __init__(self, name, loader):
        self.name, self._loader = name, loader

    def load(self):
        return self._loader()


def _raise_import():
    raise ImportError("missing dependency xyz")


class _DuplicatePlugin:
    @plugins.hookimpl
    def gptoss_hub_register_backends(self, registry):
        from gptoss_hub.backends.transformers import TransformersCpuBackend

        registry.add(TransformersCpuBackend)


def _with_extra_entry_points(monkeypatch, extra):
    real = importlib.metadata.entry_points

    def fake(**kwargs):
        return [*real(**kwargs), *extra] if kwargs.get("group") == plugins.ENTRY_POINT_GROUP else real(**kwargs)

    monkeypatch.setattr(plugins.importlib.metadata, "entry_points", fake)


def test_broken_plugins_are_reported_by_name_and_never_stop_the_others(fresh_plugins, monkeypatch):
    _with_extra_entry_points(monkeypatch, [_EP("broken_import", _raise_import), _EP("dupe", _DuplicatePlugin)])
    registry = plugins.backend_registry()
    assert "transformers/cpu" in registry.names() and "echo" in registry.names()
    failures = {f.plugin: f for f in plugins.plugin_errors()}
    assert failures["broken_import"].stage == "import" and "xyz" in failures["broken_import"].error
    assert (
        failures["dupe"].stage == "register" and "already registered by plugin 'transformers'" in failures["dupe"].error
    )


def test_strict_mode_re_raises(fresh_plugins, monkeypatch):
    monkeypatch.setenv("GPTOSS_HUB_STRICT_PLUGINS", "1")
    _with_extra_entry_points(monkeypatch, [_EP("broken_import", _raise_import)])
    with pytest.raises(PluginError, match="broken_import"):
        plugins.backend_registry()


def test_registry_validates_what_plugins_add():
    registry = plugins.BackendRegistry()
    with pytest.raises(PluginError, match=r"not a gptoss_hub\.Backend"):
        registry.add(object)

    class Nameless(Backend):
        def check(self, report, spec):
            return []

        def load(self, spec, report, **options):
            raise NotImplementedError

    with pytest.raises(PluginError, match="without a `name`"):
        registry.add(Nameless)
    with pytest.raises(BackendUnavailableError, match="Installed backends"):
        registry.get("missing")


class _RankingPlugin:
    """Vetoes transformers/cpu and promotes the echo backend."""

    @plugins.hookimpl
    def gptoss_hub_rank_candidate(self, candidate, spec, report, preferences):
        if candidate.backend == "transformers/cpu":
            return "site policy: no CPU inference"
        if candidate.backend == "echo":
            return 2000
        return None


class _BadRankingPlugin:
    @plugins.hookimpl
    def gptoss_hub_rank_candidate(self, candidate, spec, report, preferences):
        return 1.5


def test_a_ranking_plugin_changes_the_choice(fresh_plugins, monkeypatch):
    import gptoss_hub as gh

    assert gh.plan("tiny").chosen.backend in ("llamacpp/cpu", "transformers/cpu")  # echo ranks last by itself
    plugins._reset_for_tests()
    _with_extra_entry_points(monkeypatch, [_EP("policy", _RankingPlugin), _EP("bad", _BadRankingPlugin)])
    the_plan = gh.plan("tiny")
    assert the_plan.chosen.backend == "echo"
    cpu = next(c for c in the_plan.candidates if c.backend == "transformers/cpu")
    assert cpu.reasons == ("site policy: no CPU inference (plugin policy)",)
    assert "+2000: plugin policy" in the_plan.chosen.adjustments
    failures = plugins.plugin_errors()
    assert [(f.plugin, f.stage) for f in failures] == [("bad", "rank")] * len(failures) and failures
