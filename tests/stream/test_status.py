"""Who may read a user's status: the bearer token, the refusals and the forwarding rule."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from workers.settings import Settings
from workers.stream.status import CHALLENGE, authorize, route

TOKEN = SecretStr("a-status-token-of-some-length")


@pytest.mark.parametrize(
    ("header", "status"),
    [
        (None, 401),
        ("", 401),
        ("Bearer", 401),
        ("Bearer   ", 401),
        ("Basic dXNlcjpwYXNz", 401),
        ("Bearer wrong-token-of-some-length", 403),
        ("Bearer a-status-token-of-some-lengtH", 403),
        ("Bearer a-status-token-of-some-length-and-more", 403),
        ("Bearer a-status-token-of-some-lengtñ", 403),
    ],
)
def test_requests_without_the_token_are_refused(header: str | None, status: int) -> None:
    refused = authorize(TOKEN, header)
    assert refused is not None
    assert refused.status == status
    assert refused.body["error"]
    if status == 401:
        assert refused.headers == {"WWW-Authenticate": CHALLENGE}


@pytest.mark.parametrize(
    "header",
    ["Bearer a-status-token-of-some-length", "bearer a-status-token-of-some-length"],
)
def test_the_token_lets_a_request_in(header: str) -> None:
    assert authorize(TOKEN, header) is None


NEXT = SecretStr("the-next-status-token-value")


@pytest.mark.parametrize(
    ("header", "refused"),
    [
        ("Bearer a-status-token-of-some-length", None),
        ("Bearer the-next-status-token-value", None),
        ("Bearer the-next-status-token-valuE", 403),
        ("Bearer wrong-token-of-some-length", 403),
        (None, 401),
    ],
)
def test_while_rotating_both_tokens_let_a_request_in_and_no_other(
    header: str | None, refused: int | None
) -> None:
    answer = authorize(TOKEN, header, NEXT)
    assert (answer.status if answer is not None else None) == refused
    # Without the second token, only the first is accepted.
    if header == "Bearer the-next-status-token-value":
        refusal = authorize(TOKEN, header)
        assert refusal is not None and refusal.status == 403


def test_a_second_token_alone_is_refused_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LINEGUARD_STATUS_TOKEN_ALSO_ACCEPTED", "the-next-status-token-value")
    with pytest.raises(ValidationError, match="LINEGUARD_STATUS_TOKEN is not"):
        Settings()
    monkeypatch.setenv("LINEGUARD_STATUS_TOKEN", "the-first-status-token-value")
    settings = Settings()
    assert settings.status_token_also_accepted == NEXT
    assert "the-next" not in str(settings.summary())
    with pytest.raises(ValidationError, match="LINEGUARD_STATUS_TOKEN_ALSO_ACCEPTED must"):
        Settings(status_token_also_accepted="too-short")  # type: ignore[arg-type]
    monkeypatch.setenv("LINEGUARD_STATUS_TOKEN_ALSO_ACCEPTED", " ")
    assert Settings().status_token_also_accepted is None


def test_with_no_token_configured_everyone_is_refused_with_a_reason() -> None:
    refused = authorize(None, "Bearer a-status-token-of-some-length")
    assert refused is not None
    assert refused.status == 403
    assert "LINEGUARD_STATUS_TOKEN" in refused.body["error"]


@pytest.mark.parametrize(
    ("owner", "forwarded_by", "forwards"),
    [
        ("http://two:6066", None, True),
        ("http://two:6066", "http://three:6066", False),  # already forwarded once
        ("http://one:6066", None, False),  # this worker is the owner, but not ready
        (None, None, False),
        ("", None, False),
    ],
)
def test_a_request_is_forwarded_at_most_once(
    owner: str | None, forwarded_by: str | None, forwards: bool
) -> None:
    assert route(owner, "http://one:6066", forwarded_by) is forwards


def test_the_status_token_is_validated_and_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LINEGUARD_STATUS_TOKEN", "s3cret-token-value-long-enough")
    settings = Settings()
    assert settings.status_token is not None
    assert settings.status_token.get_secret_value() == "s3cret-token-value-long-enough"
    assert "s3cret" not in str(settings.summary())
    assert "s3cret" not in repr(settings)

    monkeypatch.setenv("LINEGUARD_STATUS_TOKEN", "")
    assert Settings().status_token is None
    monkeypatch.delenv("LINEGUARD_STATUS_TOKEN")
    assert Settings().status_token is None

    for bad in ("too-short", " padded-token-value-long-enough ", "tab\there-token-value-long"):
        with pytest.raises(ValidationError, match="LINEGUARD_STATUS_TOKEN"):
            Settings(status_token=bad)  # type: ignore[arg-type]


def test_tls_files_with_a_plaintext_protocol_are_refused() -> None:
    from pathlib import Path

    from workers.settings import Security

    with pytest.raises(ValidationError, match="use SSL or SASL_SSL"):
        Security(ssl_cafile=Path("ca.pem"))
    assert Security(protocol="SSL", ssl_cafile=Path("ca.pem")).ssl_cafile == Path("ca.pem")
