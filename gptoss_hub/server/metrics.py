"""`GET /metrics`: Prometheus counters and histograms of one server (its own registry, not the global one)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["ServerMetrics"]

#: Seconds; generation on a laptop CPU and on a GPU cluster both land inside this range.
_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


class ServerMetrics:
    """Requests, tokens, latencies and errors, as `gptoss_hub_*` metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "gptoss_hub_requests", "HTTP requests answered", ["route", "status"], registry=self.registry
        )
        self.errors = Counter(
            "gptoss_hub_errors", "Error replies by OpenAI error code", ["code"], registry=self.registry
        )
        self.tokens = Counter(
            "gptoss_hub_tokens", "Tokens processed", ["kind"], registry=self.registry
        )  # kind: prompt | completion
        self.latency = Histogram(
            "gptoss_hub_request_seconds",
            "Time from request to the end of the response",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.first_token = Histogram(
            "gptoss_hub_time_to_first_token_seconds",
            "Time from the start of generation to the first generated token",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_progress = Gauge("gptoss_hub_requests_in_progress", "Requests being served", registry=self.registry)
        self.stored_responses = Gauge(
            "gptoss_hub_stored_responses", "Responses kept for previous_response_id", registry=self.registry
        )
        self.stored_bytes = Gauge(
            "gptoss_hub_stored_response_bytes",
            "Bytes of the conversations kept for previous_response_id",
            registry=self.registry,
        )

    def record_reply(self, reply: Any) -> None:
        """Count a finished reply's tokens and its time to first token."""
        self.tokens.labels("prompt").inc(reply.usage.prompt_tokens)
        self.tokens.labels("completion").inc(reply.usage.completion_tokens)
        if reply.timings.time_to_first_token_s is not None:
            self.first_token.observe(reply.timings.time_to_first_token_s)

    def exposition(self) -> bytes:
        """The Prometheus text format."""
        return generate_latest(self.registry)
