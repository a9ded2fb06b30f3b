"""The kit's pytest plugin (entry point `pytest11: gptoss_hub`), inert until asked.

Options:

- `--gptoss-backend=NAME[,NAME…]|all`: run `ConformanceSuite` subclasses once per backend, loading the
  tiny reference checkpoint on it (`all`: every registered backend that can run it here).
- `--gptoss-model=PATH`: the checkpoint instead (a folder, a `.gguf` file, an alias).
- `--gptoss-timeout=SECONDS`: the most one check may take (default 600); past it the check fails
  instead of hanging the run.
- `--gptoss-report=PATH.json`: write every check's outcome there for `gptoss-hub conformance`.

Fixtures: `gptoss_backend` (the backend name), `gptoss_engine` (a loaded `Engine`; override it to test
an engine of your own), `gptoss_model` (a `Model` over that engine) and `gptoss_examples` (the
tiny-harmony corpus). Nothing here imports a runtime until a fixture is used.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from gptoss_hub.testing.checkpoints import reference_options

MARKER = "gptoss_conformance"
#: Outcomes of kit checks in this session: row label, check name, outcome, first line of the message, seconds
#: taken and the engine's dtype.
_RESULTS = pytest.StashKey[list[dict[str, Any]]]()
#: The model (engine and all) loaded for each backend, closed at the end of the session.
_LOADED = pytest.StashKey[dict[str, Any]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("gptoss_hub", "gptoss_hub conformance kit")
    group.addoption("--gptoss-backend", default=None, help="backend(s) to check: NAME[,NAME...] or 'all'")
    group.addoption("--gptoss-model", default="tiny", help="checkpoint to load (default: the tiny reference)")
    group.addoption("--gptoss-timeout", type=float, default=600.0, help="seconds one check may take")
    group.addoption("--gptoss-report", default=None, help="write the outcomes of the checks to this JSON file")
    group.addoption(
        "--gptoss-sample",
        type=int,
        default=0,
        help="check greedy ids on this many corpus examples, spread over the corpus and every kind (0: all)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARKER}: a check of the gptoss_hub conformance kit")
    config.stash[_RESULTS] = []
    config.stash[_LOADED] = {}


def selected_backends(option: str) -> list[str]:
    """The backend names `--gptoss-backend` stands for; `all` is every backend that can run the tiny model."""
    if option != "all":
        return [name.strip() for name in option.split(",") if name.strip()]
    from gptoss_hub.dispatch import plan

    candidates = plan("tiny").candidates
    return [c.backend for c in candidates if not c.reasons]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    option = metafunc.config.getoption("gptoss_backend")
    if option and "gptoss_backend" in metafunc.fixturenames:
        names = selected_backends(option)
        metafunc.parametrize("gptoss_backend", names, indirect=True, scope="session", ids=names)


@pytest.fixture(scope="session")
def gptoss_backend(request: pytest.FixtureRequest) -> str:
    """The backend under test, from `--gptoss-backend` (override this fixture to pick one in code)."""
    name = getattr(request, "param", None)
    if name is None:
        pytest.skip("no backend chosen: pass --gptoss-backend=NAME or override the gptoss_engine fixture")
    return name


@pytest.fixture(scope="session")
def gptoss_engine(request: pytest.FixtureRequest, gptoss_backend: str) -> Any:
    """The engine under test: `--gptoss-model` loaded on `gptoss_backend`, once per session."""
    import gptoss_hub as gh
    from gptoss_hub.engine import Engine

    loaded = request.config.stash[_LOADED]
    if gptoss_backend not in loaded:
        for model in loaded.values():  # one runtime at a time: the previous backend's memory goes first
            model.close()
        loaded.clear()
        model = request.config.getoption("gptoss_model")
        failure = None
        try:
            loaded[gptoss_backend] = gh.load(model, backend=gptoss_backend, **reference_options(gptoss_backend, model))
        except Exception as error:
            first_line = (str(error).strip().splitlines() or [""])[0]
            failure = f"{gptoss_backend} could not load {model}: {type(error).__name__}: {first_line}"
        if failure is None and not isinstance(loaded[gptoss_backend]._engine, Engine):
            failure = (
                f"{gptoss_backend} relays a server that speaks harmony itself: the kit checks engines of token ids; "
                "run the kit against the server's own backend instead"
            )
        if failure is not None:
            # One line for every check of this backend, not the same long traceback once per check. Failing
            # outside the except block keeps the load error out of the report as a chained exception.
            pytest.fail(failure, pytrace=False)
    return loaded[gptoss_backend]._engine


@pytest.fixture
def gptoss_model(gptoss_engine: Any) -> Any:
    """A `Model` over `gptoss_engine`: the hub's rendering and parsing on that engine."""
    from gptoss_hub.conformance.models import model_for

    return model_for(gptoss_engine)


@pytest.fixture(scope="session")
def gptoss_examples() -> list[Any]:
    """The tiny-harmony corpus: prompts and their reference completion ids."""
    from gptoss_hub.testing import corpus_examples

    return corpus_examples()


@pytest.fixture(scope="session")
def gptoss_greedy_examples(request: pytest.FixtureRequest, gptoss_examples: list[Any]) -> list[Any]:
    """The corpus examples the greedy-ids check runs: all of them, or `--gptoss-sample` of them."""
    return sample_examples(gptoss_examples, request.config.getoption("gptoss_sample"))


def sample_examples(examples: list[Any], size: int) -> list[Any]:
    """`size` of `examples` (all when `size` is 0 or more than there are): evenly spread, in corpus order, and
    with the first example of every kind among them, so no kind of turn goes unchecked."""
    if size <= 0 or size >= len(examples):
        return list(examples)
    chosen = {index * len(examples) // size for index in range(size)}
    firsts: dict[str, int] = {}
    for index, example in enumerate(examples):
        firsts.setdefault(example.kind, index)
    chosen |= set(firsts.values())
    return [examples[index] for index in sorted(chosen)]


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run each kit check in a worker thread and fail it when it outlives `--gptoss-timeout`."""
    if pyfuncitem.get_closest_marker(MARKER) is None:
        return None
    limit = pyfuncitem.config.getoption("gptoss_timeout")
    arguments = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    outcome: list[BaseException] = []

    def check() -> None:
        try:
            pyfuncitem.obj(**arguments)
        except BaseException as exc:  # re-raised in pytest's thread: failures, skips, errors alike
            outcome.append(exc)

    worker = threading.Thread(target=check, name=f"gptoss-check-{pyfuncitem.name}", daemon=True)
    worker.start()
    worker.join(limit)
    if worker.is_alive():
        pytest.fail(f"no result within {limit:g} s: the backend hangs (or is far too slow)", pytrace=False)
    if outcome:
        raise outcome[0]
    return True


def _row_label(item: pytest.Item) -> str:
    callspec = getattr(item, "callspec", None)
    if callspec is not None and "gptoss_backend" in callspec.params:
        return str(callspec.params["gptoss_backend"])
    owner = item.getparent(pytest.Class)  # a suite subclass with its own gptoss_engine: named by the class
    if owner is not None:
        return owner.name
    module = getattr(item, "module", None)  # a test function's module (pytest.Item does not declare it)
    return module.__name__ if module is not None else item.nodeid.split("::", 1)[0]


def _message(report: pytest.TestReport) -> str:
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(report.longrepr)
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[0].removeprefix("AssertionError: ").removeprefix("Failed: ") if lines else ""


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if item.get_closest_marker(MARKER) is None:
        return
    # The call phase decides, unless setup already failed or skipped (then there is no call phase).
    if report.when == "call" or (report.when == "setup" and not report.passed):
        check = getattr(item, "originalname", item.name).removeprefix("test_")
        result = "pass" if report.passed else "skip" if report.skipped else "fail"
        engine = item.funcargs.get("gptoss_engine") if hasattr(item, "funcargs") else None
        item.config.stash[_RESULTS].append(
            {
                "row": _row_label(item),
                "check": check,
                "outcome": result,
                "message": "" if report.passed else _message(report),
                "seconds": round(report.duration, 3),
                "dtype": getattr(getattr(engine, "info", None), "dtype", ""),
            }
        )


def pytest_sessionfinish(session: pytest.Session) -> None:
    for model in session.config.stash[_LOADED].values():
        model.close()
    session.config.stash[_LOADED].clear()
    path = session.config.getoption("gptoss_report")
    if path:
        Path(path).write_text(json.dumps(session.config.stash[_RESULTS], indent=2) + "\n")
