"""The conformance kit, run on this plugin's engine from its own test suite."""

import pytest
from gptoss_hub.hardware import probe
from gptoss_hub_myruntime import MyRuntimeBackend

from gptoss_hub import LoadRequest
from gptoss_hub.conformance import ConformanceSuite
from gptoss_hub.sources import resolve_model


class TestMyRuntime(ConformanceSuite):
    @pytest.fixture(scope="class")
    @classmethod
    def gptoss_engine(cls):
        engine = MyRuntimeBackend().load(LoadRequest.of(resolve_model("tiny"), probe()))
        yield engine
        engine.close()
