"""A worker node of a multi-node vLLM run without Ray: its share of the model, serving no requests itself.

With `nnodes=N`, the head (`node_rank=0`) runs vLLM's engine and serves; every other node runs only worker
processes (vLLM's "headless" mode), which join the head's process group at `master_addr:master_port` and
hold their stages or shards of the model. `WorkerNode` is that node's engine: loading starts the workers,
`generate` says to send requests to the head, `problem()` says when the workers have exited (the head is
gone), and `close()` stops them. `gptoss-hub serve` on such a node waits for it instead of serving HTTP.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from gptoss_hub.engine import Capabilities, Engine, EngineInfo, GenerationChunk, GenerationRequest
from gptoss_hub.errors import BackendError

__all__ = ["WorkerNode"]


class WorkerNode(Engine):
    """The worker processes of a follower node (`node_rank` > 0); requests go to the head node."""

    capabilities = Capabilities(streaming=False, batching=True)

    def __init__(self, executor: Any, arguments: dict[str, Any]):
        self._executor = executor
        self.head = f"{arguments.get('master_addr', '127.0.0.1')}:{arguments.get('master_port', 29501)}"
        self.node_rank, self.nnodes = arguments["node_rank"], arguments["nnodes"]
        self.info = EngineInfo(
            device="cpu" if arguments.get("device") == "cpu" else "node",
            dtype=str(arguments.get("dtype", "auto")),
            attention="vllm",
            details={"worker_node": True, "node_rank": self.node_rank, "nnodes": self.nnodes, "head": self.head},
        )
        self._monitor = threading.Thread(target=self._watch, name="gptoss-hub-vllm-workers", daemon=True)
        self._ended = threading.Event()
        self._monitor.start()

    @classmethod
    def start(cls, arguments: dict[str, Any]) -> WorkerNode:
        """Start this node's workers with `AsyncEngineArgs(**arguments)`; they join the head node's group."""
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.v1.executor.multiproc_executor import MultiprocExecutor

        own = {name: value for name, value in arguments.items() if name != "device"}
        try:
            config = AsyncEngineArgs(**own).create_engine_config(headless=True)
            executor = MultiprocExecutor(config, monitor_workers=False)
        except Exception as exc:
            raise BackendError(f"vLLM's workers could not start on node {arguments['node_rank']}: {exc}") from exc
        return cls(executor, arguments)

    def _watch(self) -> None:
        try:
            self._executor.start_worker_monitor(inline=True)  # returns once the workers have exited
        finally:
            self._ended.set()

    def problem(self) -> str | None:
        """Why the node no longer takes part (its workers exited: the head is gone), or `None`."""
        return "this worker node's processes have exited (the head node stopped)" if self._ended.is_set() else None

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the workers have exited (or `timeout` seconds); whether they have."""
        return self._ended.wait(timeout)

    def generate(self, request: GenerationRequest) -> Iterator[GenerationChunk]:
        raise BackendError(
            f"This is worker node {self.node_rank} of {self.nnodes}: it holds part of the model for the head "
            f"node at {self.head}, which takes the requests. Send them there."
        )

    def close(self) -> None:
        """Stop this node's workers. Safe to call twice."""
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown()
