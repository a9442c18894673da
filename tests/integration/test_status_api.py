"""The worker's web server: the status API needs the token; faust's own pages are off."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.integration.harness import STATUS_TOKEN, create_topics, share_partitions
from workers.broker import EmbeddedBroker
from workers.stream.routing import partition_for
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


async def test_forwarding_carries_the_token_and_happens_once(
    broker: EmbeddedBroker, workers: Workers
) -> None:
    await create_topics(broker.bootstrap)
    one = workers("one").start()
    two = workers("two").start()
    share_partitions(one, two)
    owned_by_two = set(two.get("/readyz")[1]["partitions"])
    user = next(f"fw-{n}" for n in range(100) if partition_for(f"fw-{n}", 4) in owned_by_two)
    right = {"Authorization": f"Bearer {STATUS_TOKEN}"}

    # Forwarded with the token: the owner answers (404: it has no state for this user;
    # worker one, not owning the partition, would answer 503 itself).
    status, body, headers = one.request(f"/users/{user}", headers=right)
    assert (status, headers["Cache-Control"]) == (404, "no-store")
    assert body["partition"] in owned_by_two

    # Already forwarded once: not forwarded again.
    again = {**right, "Lineguard-Forwarded-By": two.url}
    status, body, _ = one.request(f"/users/{user}", headers=again)
    assert status == 503

    # Refused before any forwarding without the token.
    assert one.request(f"/users/{user}", headers={})[0] == 401

    # No id reaches another path of either worker, forwarded or not, and none gets a 5xx:
    # each is answered as a user (404 with its partition) or refused with 400.
    hostile = ["..", ".", "%2E%2E", "..%2Freadyz", "%2Fmetrics", "a%2Fb", "x" * 65, "x" * 8_000]
    hostile += ["%00", "u%20space", "%C3%A9t%C3%A9", "fw-1%3Fforwarded%3D1"]
    for worker in (one, two):
        for user_id in hostile:
            status, body, _ = worker.request(f"/users/{user_id}", headers=right)
            assert status in (400, 404), (worker.name, user_id, status, body)
            assert isinstance(body, dict) and "error" in body, (user_id, body)
            assert "ready" not in body and "partitions" not in body, (user_id, body)
            if status == 404:
                assert "partition" in body, (user_id, body)
        # Longer than an HTTP request line may be: the server refuses it before any route.
        assert worker.request(f"/users/{'x' * 10_000}", headers=right)[0] == 400
    for worker in (one, two):
        assert "Traceback" not in worker.log_tail(100_000)


def test_without_a_token_the_status_api_is_refused(workers: Workers) -> None:
    worker = workers(status_token="").start().wait_ready()
    right = {"Authorization": f"Bearer {STATUS_TOKEN}"}
    status, body, headers = worker.request("/users/nobody", headers=right)
    assert status == 403
    assert "LINEGUARD_STATUS_TOKEN" in body["error"]
    assert headers["Cache-Control"] == "no-store"
    assert "the status API is off" in worker.log_tail(100_000)  # said at start-up


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


async def test_rotating_the_token_refuses_no_request_between_workers_on_either_token(
    broker: EmbeddedBroker, workers: Workers
) -> None:
    """The middle of a rotation (SECURITY.md): one worker still sends the old token and
    accepts the new, the other sends the new and accepts the old. A caller on either
    token is answered by the owner, whichever worker it asks; any other token is refused."""
    await create_topics(broker.bootstrap)
    old, new = "the-old-status-token-value", "the-new-status-token-value"
    one = workers("one", status_token=old, status_token_also_accepted=new).start()
    two = workers("two", status_token=new, status_token_also_accepted=old).start()
    share_partitions(one, two)
    for asked, owner in ((one, two), (two, one)):
        owned = set(owner.get("/readyz")[1]["partitions"])
        user = next(f"rt-{n}" for n in range(100) if partition_for(f"rt-{n}", 4) in owned)
        for token in (old, new):
            status, body, _ = asked.request(
                f"/users/{user}", headers={"Authorization": f"Bearer {token}"}
            )
            assert status == 404, (asked.name, token, status, body)  # the owner answered
            assert body["partition"] in owned
        refused = {"Authorization": f"Bearer {STATUS_TOKEN}"}
        assert asked.request(f"/users/{user}", headers=refused)[0] == 403
