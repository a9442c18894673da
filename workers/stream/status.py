"""``GET /users/{user_id}``: one user's risk state, for callers holding the status token.

Every request needs ``Authorization: Bearer <LINEGUARD_STATUS_TOKEN>``: none gives 401 with
``WWW-Authenticate``, another token 403, and with no token configured the endpoint answers
403 to everyone. Tokens are compared in constant time. Every answer carries
``Cache-Control: no-store``.

The worker that owns the user's partition answers; another worker forwards the request
to the owner with its own status token and a ``Lineguard-Forwarded-By`` header naming itself
(while the token is rotated, ``LINEGUARD_STATUS_TOKEN_ALSO_ACCEPTED`` is let in too).
A request that carries that header is never forwarded again, so two workers that disagree
about the owner answer 503 instead of passing the request back and forth.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import orjson
from pydantic import SecretStr

from workers.settings import Settings
from workers.stream.routing import partition_for
from workers.stream.service import StreamService

log = logging.getLogger(__name__)

FORWARDED_BY = "Lineguard-Forwarded-By"
NO_STORE = {"Cache-Control": "no-store"}
CHALLENGE = 'Bearer realm="lineguard-status"'
_JSON = "application/json"
_FORWARD_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class Answer:
    """An HTTP answer: status, JSON body and headers beyond the content type."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def authorize(
    expected: SecretStr | None, authorization: str | None, also: SecretStr | None = None
) -> Answer | None:
    """None when ``authorization`` carries the expected bearer token (or ``also``, the one
    more token accepted while the token is rotated), else the refusal."""
    if expected is None:
        return Answer(
            403,
            {
                "error": "the status API is off on this worker: "
                "set LINEGUARD_STATUS_TOKEN to turn it on"
            },
        )
    scheme, _, presented = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        return Answer(
            401,
            {"error": "this endpoint needs an 'Authorization: Bearer <token>' header"},
            {"WWW-Authenticate": CHALLENGE},
        )
    given = presented.strip().encode(errors="replace")
    # Both compared, always: how long a refusal takes says nothing of which token is set.
    accepted = [
        hmac.compare_digest(given, token.get_secret_value().encode())
        for token in (expected, also or expected)
    ]
    if not any(accepted):
        return Answer(403, {"error": "the bearer token is not the status token"})
    return None


MAX_USER_ID = 64
"""The contract's bound on ``user_id`` (``schemas/events.py``)."""


def refuse_user_id(user_id: str) -> Answer | None:
    """400 for an id no event can carry, or one that is not a single path segment."""
    if not 1 <= len(user_id) <= MAX_USER_ID:
        return Answer(400, {"error": f"a user id has 1 to {MAX_USER_ID} characters"})
    if user_id in (".", "..") or "/" in user_id:
        return Answer(400, {"error": "this user id cannot be served: it is not one path segment"})
    return None


def route(owner: str | None, me: str, forwarded_by: str | None) -> bool:
    """Whether a request for a partition this worker cannot answer goes to ``owner``.

    Never when the owner is unknown or is this worker, and never for a request that was
    already forwarded (one hop at most: no loops)."""
    return bool(owner) and owner != me and not forwarded_by


async def answer_status(
    settings: Settings, service: StreamService, user_id: str, forwarded_by: str | None
) -> Answer:
    """The answer to an authorized ``GET /users/{user_id}``, forwarding to the owner if need be."""
    number = partition_for(user_id, settings.partitions, settings.partitioner)
    processor = service.processor
    part = processor.partitions.get(number) if processor else None
    me = settings.advertised_url()
    if part is not None and service.ready:
        status = part.engine.status(user_id)
        if status is None:
            return Answer(404, {"error": f"no state for user {user_id!r}", "partition": number})
        return Answer(200, {**status, "partition": number, "served_by": me})
    owner = service.assignor.owners.get(number)
    if owner is None or not route(owner, me, forwarded_by):
        busy = f"partition {number} is being assigned or restored; retry soon"
        return Answer(503, {"error": busy})
    assert settings.status_token is not None  # authorize() let the request in
    return await forward(owner, user_id, settings.status_token, me)


async def forward(owner: str, user_id: str, token: SecretStr, me: str) -> Answer:
    """Ask the owning worker, with this worker's token, saying who forwarded the request."""
    import aiohttp
    from yarl import URL

    # One path segment, every reserved character escaped: no id can reach another path.
    url = URL(owner).with_path(f"/users/{quote(user_id, safe='')}", encoded=True)
    headers = {"Authorization": f"Bearer {token.get_secret_value()}", FORWARDED_BY: me}
    timeout = aiohttp.ClientTimeout(total=_FORWARD_TIMEOUT_SECONDS)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(url, headers=headers, allow_redirects=False) as response,
        ):
            body = await response.json(content_type=None)
            return Answer(response.status, body if isinstance(body, dict) else {"answer": body})
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        log.warning("forwarding a status request to %s failed: %s", owner, exc)
        return Answer(
            502, {"error": f"the owner of this user's partition ({owner}) did not answer"}
        )


def add_status_page(app: Any, settings: Settings, service: StreamService) -> None:
    """Register ``GET /users/{user_id}`` on the faust app."""

    @app.page("/users/{user_id}")  # type: ignore[untyped-decorator]
    async def user_status(view: Any, request: Any, user_id: str) -> Any:
        refused = authorize(
            settings.status_token,
            request.headers.get("Authorization"),
            settings.status_token_also_accepted,
        )
        refused = refused or refuse_user_id(user_id)
        answer = refused or await answer_status(
            settings, service, user_id, request.headers.get(FORWARDED_BY)
        )
        return view.bytes(
            orjson.dumps(answer.body),
            content_type=_JSON,
            status=answer.status,
            headers={**answer.headers, **NO_STORE},
        )
