"""The conformance kit: one suite of token-level and harmony checks, run against every backend.

- `ConformanceSuite` (in `gptoss_hub.conformance.suite`): the checks, as a test class to subclass.
- The pytest plugin (`gptoss_hub.conformance.plugin`, registered as `pytest11`): `--gptoss-backend`,
  the `gptoss_engine`/`gptoss_model` fixtures, a time limit on every check, a JSON report.
- `gptoss-hub conformance --backend all --report conformance.md`: runs the kit and writes the matrix.

Importing this package imports neither pytest nor a runtime.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ConformanceSuite", "first_difference", "model_for"]


def __getattr__(name: str) -> Any:
    if name == "ConformanceSuite":
        from gptoss_hub.conformance.suite import ConformanceSuite

        return ConformanceSuite
    if name == "first_difference":
        from gptoss_hub.conformance.compare import first_difference

        return first_difference
    if name == "model_for":
        from gptoss_hub.conformance.models import model_for

        return model_for
    raise AttributeError(f"module 'gptoss_hub.conformance' has no attribute {name!r}")
