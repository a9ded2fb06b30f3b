import importlib.metadata

import pytest

import gptoss_hub as gh
from gptoss_hub import plugins
from gptoss_hub.engine import Backend
from gptoss_hub.errors import BackendUnavailableError, InvalidRequestError, PluginError


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

        def load(self, request):
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


class _Misspelled:
    @plugins.hookimpl
    def gptoss_hub_register_backend(self, registry):  # one letter short
        raise AssertionError("never called")


class _Unmarked:
    def gptoss_hub_register_backends(self, registry):  # no @hookimpl
        raise AssertionError("never called")


class _Empty:
    @plugins.hookimpl
    def gptoss_hub_register_backends(self, registry):
        pass


def _import_a_missing_module():
    import gptoss_hub_no_such_dependency  # noqa: F401  (the plugin's own import, failing)


@pytest.mark.parametrize(
    ("plugin", "stage", "message"),
    [
        (
            _Misspelled,
            "import",
            "gptoss_hub_register_backend matches no hook; the hooks are gptoss_hub_register_backends, "
            "gptoss_hub_rank_candidate, gptoss_hub_register_search_sources",
        ),
        (_Unmarked, "import", "gptoss_hub_register_backends lacks @gptoss_hub.hookimpl, so it would never be called"),
        (_Empty, "register", "its gptoss_hub_register_backends hook registered no backend"),
    ],
)
def test_what_pluggy_would_ignore_silently_is_reported(fresh_plugins, monkeypatch, plugin, stage, message):
    _with_extra_entry_points(monkeypatch, [_EP("mine", plugin)])  # an instance of the class, as a module is
    registry = plugins.backend_registry()
    assert "transformers/cpu" in registry.names()
    (failure,) = [f for f in plugins.plugin_errors() if f.plugin == "mine"]
    assert failure.stage == stage and failure.error == f"PluginError: {message}"


def test_asking_for_a_backend_whose_plugin_failed_names_the_plugin_and_where(fresh_plugins, monkeypatch):
    _with_extra_entry_points(monkeypatch, [_EP("mine", _import_a_missing_module)])
    with pytest.raises(BackendUnavailableError) as error:
        gh.plan("tiny", backend="mine")
    message = str(error.value)
    assert message.startswith("No backend named 'mine'. Installed backends: ")
    assert "Installed plugins that failed to load: 'mine' failed to import: ModuleNotFoundError: No module named " in (
        message
    )
    assert f"(at {__file__}:" in message and message.endswith("See `gptoss-hub doctor`.")


def test_a_load_request_validates_the_context_once_for_every_backend():
    from gptoss_hub.hardware import load_fixture

    from gptoss_hub.engine import LoadRequest
    from gptoss_hub.sources import resolve_model

    spec, report = resolve_model("tiny"), load_fixture("cpu-only")
    request = LoadRequest.of(spec, report, device="cpu", max_context=4096, n_threads=2)
    assert (request.device, request.context, dict(request.options)) == ("cpu", 4096, {"n_threads": 2})
    assert request.context_tokens() == 4096 and request.context_tokens(4096, "n_ctx") == 4096
    with pytest.raises(InvalidRequestError, match="Pass n_ctx or max_context, not both"):
        request.context_tokens(2048, "n_ctx")
    assert LoadRequest.of(spec, report).context_tokens(2048, "n_ctx") == 2048
    for bad in (0, -1, "8192", True):
        with pytest.raises(InvalidRequestError, match="max_context must be a positive number of tokens"):
            LoadRequest.of(spec, report, max_context=bad)


def test_a_remote_model_refuses_a_device_or_a_context_it_would_ignore():
    pytest.importorskip("openai", reason="the openai extra is installed by .ci/run")
    from gptoss_hub.backends.openai import OpenAIBackend
    from gptoss_hub.hardware import load_fixture

    from gptoss_hub.engine import LoadRequest
    from gptoss_hub.sources import resolve_model

    spec, report = resolve_model("http://127.0.0.1:9/v1"), load_fixture("cpu-only")
    for asked in ({"device": "cuda"}, {"max_context": 4096}):
        with pytest.raises(InvalidRequestError, match="does not apply to a model on a remote server"):
            OpenAIBackend().load(LoadRequest.of(spec, report, **asked))


class _SearchPlugin:
    """Registers one search source, and tries to take a name the hub already has."""

    @plugins.hookimpl
    def gptoss_hub_register_search_sources(self, registry):
        from gptoss_hub.testing.web import fixture_web

        def open_source(argument):
            web = fixture_web()
            web.searches = {argument or "q": web.searches["boiling point of water"]}
            return web, web

        registry.add("intranet", open_source, "intranet:QUERY, a test source")
        registry.add("local", open_source, "a second local")  # taken: this plugin fails, the others stay


class _BrokenSearchPlugin:
    @plugins.hookimpl
    def gptoss_hub_register_search_sources(self, registry):
        raise RuntimeError("no configuration")


def test_plugins_add_search_sources_and_a_broken_one_hides_no_other(fresh_plugins, monkeypatch):
    from gptoss_hub.tools.browser.sources import browser_for

    _with_extra_entry_points(
        monkeypatch, [_EP("intranet_search", _SearchPlugin), _EP("broken_search", _BrokenSearchPlugin)]
    )
    sources = plugins.search_sources()
    assert sources.names()[:5] == ["local", "searxng", "exa", "youcom", "fixture"]
    assert sources.owner("intranet") == "intranet_search" and sources.owner("local") == "<hub>"
    browser = browser_for("intranet:water")
    assert browser.call("browser.search", {"query": "water"}).startswith("[0] water")
    failures = {f.plugin: f for f in plugins.plugin_errors()}
    assert "already registered by '<hub>'" in failures["intranet_search"].error
    assert failures["broken_search"].stage == "register" and "no configuration" in failures["broken_search"].error
    with pytest.raises(InvalidRequestError, match="Unknown search source 'nowhere'; use one of: local:DIR"):
        browser_for("nowhere")
