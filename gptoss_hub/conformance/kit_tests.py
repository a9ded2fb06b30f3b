"""The module `gptoss-hub conformance` and `pytest --pyargs gptoss_hub.conformance.kit_tests` collect:
`ConformanceSuite` once per backend named by `--gptoss-backend`."""

from gptoss_hub.conformance.suite import ConformanceSuite


class TestConformance(ConformanceSuite):
    """Every check, parametrized over the backends `--gptoss-backend` names."""
