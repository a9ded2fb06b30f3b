"""Choosing the backend: a pure function of the model, the hardware report, the registered backends and
the caller's preferences.

Every candidate keeps the reasons it was rejected and every adjustment made to its rank, so
`gptoss-hub plan`, load errors and `Model.info` can say what to install or change. Nothing is chosen
silently.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from gptoss_hub.engine import Backend
from gptoss_hub.errors import BackendUnavailableError, InvalidRequestError, NoBackendError
from gptoss_hub.hardware import HardwareReport, probe
from gptoss_hub.memory import DEFAULT_CONTEXT_TOKENS, MemoryEstimate
from gptoss_hub.plugins import BackendRegistry, backend_registry, rank_opinions
from gptoss_hub.sources import ModelSpec, resolve_model

__all__ = ["SERVING_BONUS", "Candidate", "Plan", "Preferences", "plan"]

#: Rank added to batching backends when planning for serving: enough to put them ahead of any
#: single-request backend, not enough to make a rejected one viable.
SERVING_BONUS = 1000


@dataclass(frozen=True)
class Preferences:
    """What the caller asked the plan for."""

    #: "auto", a backend family ("transformers") or a full backend name ("transformers/cpu").
    backend: str = "auto"
    #: Serve many users: prefer backends with continuous batching (vLLM).
    serving: bool = False
    #: Context length to budget memory for.
    context_tokens: int = DEFAULT_CONTEXT_TOKENS
    #: The device asked for (`gh.load(..., device="cpu")`): backends bound to another device step aside.
    device: str | None = None


@dataclass(frozen=True)
class Candidate:
    """One backend considered for the model: its rank, why it cannot run (empty when it can), and why
    its rank moved."""

    backend: str
    rank: int
    reasons: tuple[str, ...] = ()
    adjustments: tuple[str, ...] = ()
    #: The memory the backend would hold for the model here (`None`: none here, or its size is unknown).
    memory: MemoryEstimate | None = None

    @property
    def viable(self) -> bool:
        """Whether the backend can run the model here."""
        return not self.reasons


@dataclass(frozen=True)
class Plan:
    """The ranked candidates for a model on a machine and the one chosen (if any)."""

    spec: ModelSpec
    report: HardwareReport
    preferences: Preferences = field(default_factory=Preferences)
    candidates: tuple[Candidate, ...] = ()

    @property
    def requested(self) -> str:
        """The backend asked for ("auto" when dispatch decides)."""
        return self.preferences.backend

    @property
    def chosen(self) -> Candidate | None:
        """The first viable candidate in rank order, or `None`."""
        return next((c for c in self.candidates if c.viable), None)

    def explain(self) -> str:
        """A readable account: every candidate, chosen or why not."""
        prefs = self.preferences
        lines = [
            f"model: {self.spec.name} ({self.spec.kind})",
            f"backend requested: {prefs.backend}; serving: {'yes' if prefs.serving else 'no'}; "
            f"context: {prefs.context_tokens} tokens" + (f"; device: {prefs.device}" if prefs.device else ""),
        ]
        chosen = self.chosen
        for candidate in self.candidates:
            mark = "->" if candidate is chosen else ("ok" if candidate.viable else "no")
            lines.append(f"  {mark} {candidate.backend} (rank {candidate.rank})")
            lines.extend(f"       rank {note}" for note in candidate.adjustments)
            if candidate.memory is not None:
                lines.append(f"       {candidate.memory.summary()}")
            lines.extend(f"       - {reason}" for reason in candidate.reasons)
        if chosen is None:
            lines.append("  no backend can run this model here: see the reasons above.")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """The plan as JSON-ready data (`gptoss-hub plan --json`, `Model.info.plan`)."""
        chosen = self.chosen
        return {
            "model": self.spec.name,
            "source": self.spec.source,
            "preferences": {
                "backend": self.preferences.backend,
                "serving": self.preferences.serving,
                "context_tokens": self.preferences.context_tokens,
                "device": self.preferences.device,
            },
            "chosen": chosen.backend if chosen else None,
            "candidates": [
                {
                    "backend": c.backend,
                    "rank": c.rank,
                    "viable": c.viable,
                    "reasons": list(c.reasons),
                    "adjustments": list(c.adjustments),
                    "memory": c.memory.to_dict() if c.memory is not None else None,
                }
                for c in self.candidates
            ],
        }

    def require(self) -> Candidate:
        """The chosen candidate; otherwise `NoBackendError` (automatic choice) or `BackendUnavailableError`
        (the backend asked for cannot run), carrying every rejection."""
        if self.chosen is not None:
            return self.chosen
        if self.requested == "auto":
            raise NoBackendError(f"No backend can run {self.spec.name!r} here.\n{self.explain()}")
        raise BackendUnavailableError(
            f"Backend {self.requested!r} cannot run {self.spec.name!r} here.\n{self.explain()}"
        )


def _matching(registry: BackendRegistry, requested: str) -> list[Backend]:
    if requested == "auto":
        return registry.all()
    exact = [b for b in registry.all() if b.name == requested]
    family = [b for b in registry.all() if b.family == requested]
    if exact or family:
        return exact or family
    registry.get(requested)  # raises the error that lists the installed backends
    return []


def _consider(
    backend: Any, spec: ModelSpec, report: HardwareReport, preferences: Preferences, options: Mapping[str, Any]
) -> Candidate:
    reasons = [*backend.check(report, spec), *(backend.check_options(report, spec, options) if options else [])]
    candidate = Candidate(backend.name, backend.rank, tuple(reasons), memory=backend.memory_estimate(report, spec))
    bound_to = backend.device
    if preferences.device and bound_to is not None and not preferences.device.startswith(bound_to):
        reason = f"device={preferences.device!r} was asked for; {backend.name} runs on {bound_to}."
        candidate = replace(candidate, reasons=(*candidate.reasons, reason))
    if (own := backend.rank_adjustment(report, spec)) is not None:
        change, why = own
        candidate = replace(candidate, rank=candidate.rank + change, adjustments=(f"{change:+d}: {why}",))
    if preferences.serving and backend.batching:
        candidate = replace(
            candidate,
            rank=candidate.rank + SERVING_BONUS,
            adjustments=(*candidate.adjustments, f"+{SERVING_BONUS}: batches many requests at once (serving=True)"),
        )
    for plugin, opinion in rank_opinions(candidate=candidate, spec=spec, report=report, preferences=preferences):
        if isinstance(opinion, str):
            candidate = replace(candidate, reasons=(*candidate.reasons, f"{opinion} (plugin {plugin})"))
        else:
            candidate = replace(
                candidate,
                rank=candidate.rank + opinion,
                adjustments=(*candidate.adjustments, f"{opinion:+d}: plugin {plugin}"),
            )
    return candidate


def plan(
    model: str | os.PathLike[str] | ModelSpec,
    report: HardwareReport | None = None,
    *,
    backend: str = "auto",
    serving: bool = False,
    context: int | None = None,
    registry: BackendRegistry | None = None,
    device: str | None = None,
    options: Mapping[str, Any] | None = None,
) -> Plan:
    """Rank the backends that could run `model` on the machine `report` describes (this one by default).

    `backend`: "auto", a family ("transformers") or a full name ("transformers/cpu"). `serving=True` prefers
    backends that batch requests. `context` is the context length to budget memory for (default 8192
    tokens). Plugins may adjust ranks or veto candidates through `gptoss_hub_rank_candidate`. `device` sets
    aside backends bound to another device (`llamacpp/cuda` when `device="cpu"` is asked for). `options` are
    the backend options `load()` would get (`tensor_parallel_size=16`): each candidate says whether it can run
    with them (`Backend.check_options`).

    The plan reads nothing from the environment: `gptoss_hub.load()` and `gptoss-hub plan` resolve
    `$GPTOSS_HUB_BACKEND` and `$OPENAI_BASE_URL` (`gptoss_hub.environment`) and pass the result in.
    """
    if context is not None and context < 1:
        raise InvalidRequestError(f"context must be a positive number of tokens, got {context}.")
    preferences = Preferences(
        backend=backend, serving=serving, context_tokens=context or DEFAULT_CONTEXT_TOKENS, device=device
    )
    spec = model if isinstance(model, ModelSpec) else resolve_model(model)
    spec = spec.model_copy(update={"context_tokens": preferences.context_tokens})
    report = report or probe()
    registry = registry or backend_registry()
    considered = [_consider(b, spec, report, preferences, options or {}) for b in _matching(registry, backend)]
    # Stable sort: equal ranks keep the registry's order (rank, then name).
    candidates = tuple(sorted(considered, key=lambda c: -c.rank))
    return Plan(spec=spec, report=report, preferences=preferences, candidates=candidates)
