"""A fresh embedded broker per test, and worker processes that are always cleaned up."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.harness import worker_process
from workers.broker import EmbeddedBroker
from workers.stream.worker_process import WorkerProcess


@pytest.fixture
async def broker() -> AsyncIterator[EmbeddedBroker]:
    async with EmbeddedBroker() as running:
        yield running


@pytest.fixture
def workers(broker: EmbeddedBroker, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []

    def make(name: str = "worker", **settings: Any) -> WorkerProcess:
        worker = worker_process(broker.bootstrap, tmp_path, name, **settings)
        started.append(worker)
        return worker

    yield make
    for worker in started:
        if worker.running():
            worker.kill()
