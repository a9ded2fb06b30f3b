"""Choosing the backend: a pure function of the model, the hardware report and the installed backends.

Every candidate keeps the reasons it was rejected, so `gptoss-hub plan` and load errors can say what
to install or change. Nothing is chosen silently.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from gptoss_hub.errors import BackendUnavailableError
from gptoss_hub.hardware import HardwareReport, probe
from gptoss_hub.plugins import BackendRegistry, backend_registry
from gptoss_hub.sources import ModelSpec, resolve_model

__all__ = ["Candidate", "Plan", "plan"]


@dataclass(frozen=True)
class Candidate:
    """One backend considered for the model, with why it cannot run (empty when it can)."""

    backend: str
    rank: int
    reasons: tuple[str, ...] = ()

    @property
    def viable(self) -> bool:
        """Whether the backend can run the model here."""
        return not self.reasons


@dataclass(frozen=True)
class Plan:
    """The ranked candidates for a model on this machine and the one chosen (if any)."""

    spec: ModelSpec
    report: HardwareReport
    requested: str
    candidates: tuple[Candidate, ...] = field(default_factory=tuple)

    @property
    def chosen(self) -> Candidate | None:
        """The first viable candidate in rank order, or `None`."""
        return next((c for c in self.candidates if c.viable), None)

    def explain(self) -> str:
        """A readable account: every candidate, chosen or why not."""
        lines = [f"model: {self.spec.name} ({self.spec.kind})", f"backend requested: {self.requested}"]
        chosen = self.chosen
        for candidate in self.candidates:
            mark = "->" if candidate is chosen else ("ok" if candidate.viable else "no")
            lines.append(f"  {mark} {candidate.backend} (rank {candidate.rank})")
            lines.extend(f"       - {reason}" for reason in candidate.reasons)
        return "\n".join(lines)

    def require(self) -> Candidate:
        """The chosen candidate, or `BackendUnavailableError` carrying every rejection."""
        if self.chosen is None:
            raise BackendUnavailableError(
                f"No backend can run {self.spec.name!r} here.\n{self.explain()}"
                if self.candidates
                else f"No backend matches {self.requested!r}."
            )
        return self.chosen


def _matching(registry: BackendRegistry, requested: str) -> list:
    if requested == "auto":
        return registry.all()
    exact = [b for b in registry.all() if b.name == requested]
    family = [b for b in registry.all() if b.family == requested]
    if exact or family:
        return exact or family
    registry.get(requested)  # raises the error that lists the installed backends
    return []


def plan(
    model: str | os.PathLike[str] | ModelSpec,
    report: HardwareReport | None = None,
    *,
    backend: str = "auto",
    registry: BackendRegistry | None = None,
) -> Plan:
    """Rank the backends that could run `model` and record why each one can or cannot.

    `backend` is `"auto"`, a backend family (`"transformers"`) or a full name (`"transformers/cpu"`).
    """
    spec = model if isinstance(model, ModelSpec) else resolve_model(model)
    report = report or probe()
    registry = registry or backend_registry()
    candidates = tuple(Candidate(b.name, b.rank, tuple(b.check(report, spec))) for b in _matching(registry, backend))
    return Plan(spec=spec, report=report, requested=backend, candidates=candidates)
