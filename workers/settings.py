"""The worker's settings: one pydantic-settings class, read from ``LINEGUARD_*`` variables.

Nested fields use ``__``: ``LINEGUARD_TOPICS__DECISIONS=risk.decisions``,
``LINEGUARD_SECURITY__PROTOCOL=SASL_SSL``. Secrets are ``SecretStr`` and never printed.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from schemas.events import EVENT_TYPES

MIN_STATUS_TOKEN_LENGTH = 16


class Security(BaseModel):
    """How the worker authenticates to the brokers."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "SCRAM-SHA-512"
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_key_password: SecretStr | None = None

    @model_validator(mode="after")
    def _credentials_for_sasl(self) -> Security:
        if self.protocol.startswith("SASL_") and not (self.sasl_username and self.sasl_password):
            raise ValueError("SASL needs security.sasl_username and security.sasl_password")
        tls_files = (self.ssl_cafile, self.ssl_certfile, self.ssl_keyfile)
        if any(tls_files) and self.protocol not in ("SSL", "SASL_SSL"):
            # Certificates with a plaintext protocol would be ignored without a word.
            raise ValueError(
                "security.ssl_* files are set but security.protocol is "
                f"{self.protocol}: use SSL or SASL_SSL"
            )
        return self


class Topics(BaseModel):
    """Topic names. Inputs are one topic per event type; all topics are co-partitioned."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    login: str = "lineguard.login"
    device_change: str = "lineguard.device-change"
    bank_card_change: str = "lineguard.bank-card-change"
    profile_change: str = "lineguard.profile-change"
    transaction: str = "lineguard.transaction"
    repayment: str = "lineguard.repayment"
    decisions: str = "lineguard.decisions"
    flags: str = "lineguard.flags"
    shadow_decisions: str = "lineguard.shadow-decisions"
    """The challenger policy's would-be decisions and flags (never acted on)."""
    dead_letter: str = "lineguard.dead-letter"
    changelog: str = "lineguard.changelog"
    policies: str = "lineguard.policies"
    """Published policies (compacted, one partition): not co-partitioned with the rest."""
    overrides: str = "lineguard.overrides"
    """Per-user overrides (compacted, keyed by user id, co-partitioned with the inputs)."""

    def inputs(self) -> dict[str, str]:
        """Input topic name -> the event type it carries."""
        return {getattr(self, event_type): event_type for event_type in EVENT_TYPES}

    def consumed(self) -> tuple[str, ...]:
        """What the worker consumes: the six inputs and the overrides."""
        return (*self.inputs(), self.overrides)

    def compacted(self) -> tuple[str, ...]:
        """The co-partitioned topics that are compacted (the rest must not be)."""
        return (self.changelog, self.overrides)

    def outputs(self) -> tuple[str, ...]:
        return (self.decisions, self.flags, self.shadow_decisions, self.dead_letter)

    def all(self) -> tuple[str, ...]:
        return (*self.inputs(), *self.outputs(), self.changelog, self.overrides)

    @model_validator(mode="after")
    def _distinct(self) -> Topics:
        names = [*self.inputs(), *self.outputs(), self.changelog, self.policies, self.overrides]
        if len(set(names)) != len(names):
            raise ValueError("every topic needs its own name")
        return self


class Settings(BaseSettings):
    """Everything the worker, the demo and the benchmark read from the environment."""

    model_config = SettingsConfigDict(
        env_prefix="LINEGUARD_", env_nested_delimiter="__", extra="ignore", frozen=True
    )

    brokers: Annotated[list[str], NoDecode] = Field(
        default=["127.0.0.1:9092"], description="Bootstrap servers, comma separated in the env."
    )
    security: Security = Field(
        Security(), description="How the worker authenticates to the brokers."
    )
    topics: Topics = Field(Topics(), description="Topic names, one input topic per event type.")
    partitions: int = Field(6, ge=1, le=1024, description="Partition count of every topic.")
    partitioner: Literal["murmur2", "crc32"] = Field(
        "murmur2",
        description=(
            "How producers map a user_id key to a partition: murmur2 (Kafka's default) or "
            "crc32 (librdkafka's consistent_random). Records elsewhere are dead letters."
        ),
    )
    replication_factor: int = Field(1, ge=1, le=16, description="Used when creating topics.")
    create_topics: bool = Field(True, description="Create missing topics at start-up.")
    group_id: str = Field("lineguard", description="Consumer group (and state directory name).")
    group_instance_id: str | None = Field(
        None,
        description=(
            "The Kafka group.instance.id for static membership: one stable id per worker "
            "(a StatefulSet's pod name). Empty or None: dynamic membership."
        ),
    )
    client_id: str = Field("lineguard-worker", description="Kafka client id.")

    store: Literal["memory", "rocksdb"] = Field("memory", description="Where user state lives.")
    data_dir: Path = Field(Path("./lineguard-data"), description="Directory of the stores.")
    clock: Literal["wall", "event"] = Field(
        "wall", description="wall (production) or event (replaying history)."
    )
    policy_file: Path | None = Field(None, description="None: the packaged default policy.")
    follow_policies: bool = Field(
        True,
        description=(
            "Follow the policies topic: start with its newest valid live policy (else the "
            "policy file) and switch to each newly published one between batches."
        ),
    )
    policy_disagreement_seconds: float = Field(
        120.0,
        ge=0,
        description=(
            "/readyz fails once the workers of the group have run different live policies "
            "for this long (each asks the others' /readyz); 0: never."
        ),
    )

    web_host: str = Field("127.0.0.1", description="Address the web server binds.")
    web_port: int = Field(
        6066, ge=0, le=65535, description="Port of /metrics, /healthz, /readyz, /users/{id}."
    )
    web_advertised_url: str | None = Field(
        None, description="How other workers reach this one; default http://host:port."
    )
    status_token: SecretStr | None = Field(
        None,
        description=(
            "Bearer token that GET /users/{user_id} requires (at least 16 characters); "
            "unset: that endpoint answers 403."
        ),
    )
    status_token_also_accepted: SecretStr | None = Field(
        None,
        description=(
            "One more bearer token GET /users/{user_id} accepts, never sent when forwarding: "
            "to rotate the status token with no request refused (SECURITY.md)."
        ),
    )
    log_format: Literal["json", "text"] = Field("text", description="Log line format.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Least severe log level written."
    )

    tansu_binary: Path | None = Field(None, description="Override the embedded broker binary.")
    session_timeout_seconds: float = Field(
        10.0, ge=1, le=300, description="Consumer group session timeout."
    )
    heartbeat_interval_seconds: float = Field(
        1.0, gt=0, le=60, description="Consumer heartbeat; at most a third of the session."
    )
    max_batch_records: int = Field(
        5000, ge=1, le=1_000_000, description="Records fetched per batch at most."
    )
    tick_interval_seconds: float = Field(
        1.0, gt=0, le=3600, description="How often the worker fires the deadlines that fell due."
    )
    max_future_skew_seconds: float = Field(
        300.0, ge=0, description="Wall clock: events further ahead of now are dead letters."
    )
    max_pending_per_partition: int = Field(
        20_000, ge=100, description="Records held for time ordering before fetching pauses."
    )
    align_wait_ms: int = Field(
        200,
        ge=0,
        le=60_000,
        description=(
            "How long an event waits for an idle input topic of its partition before events "
            "of other topics with a later time go ahead (covers the producers' cross-topic skew)."
        ),
    )
    max_age_days: float = Field(
        400,
        gt=0,
        description="Events older than the partition's clock by more than this are dead letters.",
    )
    live_users: int = Field(
        200_000,
        ge=1,
        description="User states this worker keeps as live objects; the rest are held as bytes.",
    )
    deadline_slice: int = Field(
        20_000,
        ge=1,
        description="Deadlines fired per partition per batch (a burst is fired in slices).",
    )
    stall_seconds: float = Field(
        15.0, gt=0, description="A batch waiting on the brokers this long makes /readyz fail."
    )
    dead_letter_max_bytes: int = Field(
        64 * 1024,
        ge=1024,
        le=512 * 1024,
        description=(
            "A dead letter's value is the rejected record's bytes cut to this size (the "
            "original size and SHA-256 go in headers), so it always fits in one produce request."
        ),
    )
    max_consecutive_failures: int = Field(
        30,
        ge=1,
        description="Failed batches in a row (retried with back-off) before the worker stops.",
    )

    @field_validator("brokers", mode="before")
    @classmethod
    def _split_brokers(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("group_instance_id", mode="before")
    @classmethod
    def _empty_instance_id_is_dynamic(cls, value: Any) -> Any:
        if isinstance(value, str):
            return value.strip() or None
        return value

    @field_validator("group_instance_id")
    @classmethod
    def _kafka_instance_id(cls, value: str | None) -> str | None:
        # The brokers refuse any other id at JoinGroup, long after start-up.
        if value is not None and (
            value in (".", "..") or not re.fullmatch(r"[A-Za-z0-9._-]{1,249}", value)
        ):
            raise ValueError(
                "LINEGUARD_GROUP_INSTANCE_ID must be 1 to 249 letters, digits, '.', '_' or '-' "
                f"(not '.' or '..'), got {value!r}"
            )
        return value

    @field_validator("status_token", "status_token_also_accepted", mode="before")
    @classmethod
    def _empty_token_is_unset(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("status_token", "status_token_also_accepted")
    @classmethod
    def _long_token(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is None:
            return None
        name = f"LINEGUARD_{(info.field_name or '').upper()}"
        secret = value.get_secret_value()
        if len(secret) < MIN_STATUS_TOKEN_LENGTH:
            raise ValueError(f"{name} must be at least {MIN_STATUS_TOKEN_LENGTH} characters")
        if secret != secret.strip() or not secret.isprintable() or not secret.isascii():
            raise ValueError(
                f"{name} must be printable ASCII with no surrounding spaces "
                "(it travels in an HTTP header)"
            )
        return value

    @field_validator("brokers")
    @classmethod
    def _some_broker(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one broker address is needed")
        return value

    @model_validator(mode="after")
    def _also_accepted_beside_a_token(self) -> Settings:
        if self.status_token_also_accepted is not None and self.status_token is None:
            raise ValueError(
                "LINEGUARD_STATUS_TOKEN_ALSO_ACCEPTED is set but LINEGUARD_STATUS_TOKEN is not: "
                "set the token the workers send when forwarding (SECURITY.md, rotating the token)"
            )
        return self

    @model_validator(mode="after")
    def _heartbeat_below_session(self) -> Settings:
        if self.heartbeat_interval_seconds * 3 > self.session_timeout_seconds:
            raise ValueError("heartbeat_interval_seconds must be at most a third of the session")
        return self

    def advertised_url(self) -> str:
        """The base URL other workers use to forward status requests to this one."""
        if self.web_advertised_url:
            return self.web_advertised_url.rstrip("/")
        host = self.web_host
        if host in ("0.0.0.0", "::", ""):
            host = socket.gethostname()
        return f"http://{host}:{self.web_port}"

    def summary(self) -> dict[str, Any]:
        """A loggable view: every setting except secrets, which are masked."""
        return self.model_dump(mode="json")
