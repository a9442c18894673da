"""The worker's web server: the status API needs the token; faust's own pages are off."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.integration.harness import STATUS_TOKEN
from workers.stream.worker_process import WorkerProcess

pytestmark = pytest.mark.integration
Workers = Callable[..., WorkerProcess]


def test_the_status_api_needs_the_bearer_token(workers: Workers) -> None:
    worker = workers().start().wait_ready()

    status, body, headers = worker.request("/users/nobody", headers={})
    assert status == 401
    assert headers["WWW-Authenticate"].startswith("Bearer ")
    assert headers["Cache-Control"] == "no-store"
    assert "Authorization" in body["error"]

    wrong = {"Authorization": "Bearer not-the-token-at-all-but-long"}
    status, body, headers = worker.request("/users/nobody", headers=wrong)
    assert status == 403
    assert headers["Cache-Control"] == "no-store"

    right = {"Authorization": f"Bearer {STATUS_TOKEN}"}
    status, body, headers = worker.request("/users/nobody", headers=right)
    assert status == 404  # let in; no state for this user
    assert headers["Cache-Control"] == "no-store"
    assert "partition" in body

    # A forwarded request for a partition this worker owns is simply answered here.
    forwarded = {**right, "Lineguard-Forwarded-By": "http://elsewhere:6066"}
    assert worker.request("/users/nobody", headers=forwarded)[0] == 404

    # Health, readiness and metrics stay open for probes and scrapers.
    assert worker.request("/healthz", headers={})[0] == 200
    assert worker.request("/readyz", headers={})[0] == 200


def test_without_a_token_the_status_api_is_refused(workers: Workers) -> None:
    worker = workers(status_token="").start().wait_ready()
    right = {"Authorization": f"Bearer {STATUS_TOKEN}"}
    status, body, headers = worker.request("/users/nobody", headers=right)
    assert status == 403
    assert "LINEGUARD_STATUS_TOKEN" in body["error"]
    assert headers["Cache-Control"] == "no-store"


def test_faust_pages_that_describe_internals_are_off(workers: Workers) -> None:
    worker = workers().start().wait_ready()
    internals = ["/router/", "/table/", "/graph/", "/stats/", "/performance/", "/assignment/"]
    assert {path: _status_of(worker, path) for path in internals} == dict.fromkeys(internals, 404)
    assert _status_of(worker, "/metrics") == 200


def _status_of(worker: WorkerProcess, path: str) -> int:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(worker.url + path, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
