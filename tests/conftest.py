"""Shared fixtures: one loaded tiny model per test session (loading and building are the slow parts)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_model():
    """The trained tiny-harmony checkpoint on the transformers CPU backend."""
    import gptoss_hub as gh

    model = gh.load("tiny", backend="transformers")
    yield model
    model.close()


@pytest.fixture(scope="session")
def echo_model():
    """The echo backend from the test plugin package (no runtime behind it)."""
    import gptoss_hub as gh

    model = gh.load("tiny", backend="echo")
    yield model
    model.close()
