"""``lineguard check-topics``: are the brokers' topics the ones the worker needs?

Read-only: it creates and changes nothing. Against the settings (``LINEGUARD_*``, with
``--brokers`` and ``--partitions`` on top) it checks that every topic exists; that every
topic has the configured partition count, so the six inputs are co-partitioned with each
other and with the outputs, the changelog and the overrides (outputs, dead letters and state
are written to the partition of the input they come from, and a user's overrides are applied
where the user's state is); and that the changelog and the overrides are compacted while no
other topic is (compaction keeps only the last record of each key, and the key of every
input and output is the user id). Exit codes: 0 all is well, 1 a problem was found (each
one printed), 2 usage or settings error, 3 the brokers cannot be reached.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from workers.settings import Settings

EXIT_OK, EXIT_PROBLEM, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3


@dataclass(frozen=True, slots=True)
class TopicInfo:
    """What the brokers say about one topic."""

    partitions: int
    cleanup_policy: str = "delete"
    """The topic's ``cleanup.policy`` (``delete`` when it is not set on the topic)."""


def roles(settings: Settings) -> dict[str, str]:
    """Topic name -> what the worker uses it for."""
    topics = settings.topics
    named = {topic: f"{event_type} input" for topic, event_type in topics.inputs().items()}
    named[topics.decisions] = "decisions"
    named[topics.flags] = "flags"
    named[topics.shadow_decisions] = "shadow decisions"
    named[topics.dead_letter] = "dead letters"
    named[topics.changelog] = "changelog"
    named[topics.overrides] = "overrides"
    return named


def problems(settings: Settings, found: dict[str, TopicInfo]) -> list[str]:
    """Every way ``found`` (topic name -> info; absent: missing) falls short of the worker's
    needs under ``settings``; empty when all is well. The policies topic is optional (without
    it workers run their policy file), but when it exists it has one partition, compacted."""
    result = _topic_problems(settings, found)
    policies = found.get(settings.topics.policies)
    if policies is not None:
        name = f"{settings.topics.policies} (policies)"
        if policies.partitions != 1:
            result.append(f"{name}: {policies.partitions} partitions, expected 1 (one order)")
        if "compact" not in {part.strip() for part in policies.cleanup_policy.split(",")}:
            result.append(
                f"{name}: cleanup.policy is {policies.cleanup_policy!r}, expected 'compact' "
                "(otherwise the live policy is deleted with old segments)"
            )
    return result


def _topic_problems(settings: Settings, found: dict[str, TopicInfo]) -> list[str]:
    named = roles(settings)
    compacted = settings.topics.compacted()
    wanted = settings.partitions
    result: list[str] = []
    input_counts = {found[topic].partitions for topic in settings.topics.inputs() if topic in found}
    if len(input_counts) > 1:
        counts = ", ".join(
            f"{topic}={found[topic].partitions}"
            for topic in settings.topics.inputs()
            if topic in found
        )
        result.append(f"the input topics are not co-partitioned: {counts}")
    for topic, role in named.items():
        info = found.get(topic)
        if info is None:
            result.append(f"{topic} ({role}): missing")
            continue
        if info.partitions != wanted:
            result.append(
                f"{topic} ({role}): {info.partitions} partitions, the worker expects {wanted} "
                "(LINEGUARD_PARTITIONS; every topic has the inputs' partition count)"
            )
        policies = {part.strip() for part in info.cleanup_policy.split(",")}
        if topic in compacted and "compact" not in policies:
            what = (
                "users' state is" if topic == settings.topics.changelog else "users' overrides are"
            )
            result.append(
                f"{topic} ({role}): cleanup.policy is {info.cleanup_policy!r}, expected "
                f"'compact' (otherwise {what} deleted with old segments)"
            )
        elif topic not in compacted and "compact" in policies:
            result.append(
                f"{topic} ({role}): cleanup.policy is {info.cleanup_policy!r}; only the "
                "changelog and the overrides may be compacted (compaction keeps each user's "
                "last record only)"
            )
    return result


async def describe(settings: Settings, timeout_seconds: float) -> dict[str, TopicInfo]:
    """Partition count and cleanup policy of each of the worker's topics that exists.

    Raises ``BrokerUnavailable`` when the brokers cannot be reached."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
    from aiokafka.errors import KafkaError

    from workers.stream.clients import BrokerUnavailable, connection_options

    admin = AIOKafkaAdminClient(
        **connection_options(settings), request_timeout_ms=int(timeout_seconds * 1000)
    )
    try:
        await asyncio.wait_for(admin.start(), timeout_seconds)
    except (KafkaError, TimeoutError, OSError) as exc:
        await admin.close()
        raise BrokerUnavailable(
            f"cannot reach the Kafka brokers {', '.join(settings.brokers)}: {exc}"
        ) from exc
    try:
        existing = set(await admin.list_topics())
        wanted = (*settings.topics.all(), settings.topics.policies)
        present = [topic for topic in wanted if topic in existing]
        if not present:
            return {}
        counts = {
            item["topic"]: len(item["partitions"]) for item in await admin.describe_topics(present)
        }
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic) for topic in present]
        )
        policies = {
            resource["resource_name"]: _cleanup_policy(resource)
            for response in responses
            for resource in response.to_object()["resources"]
        }
        return {
            topic: TopicInfo(counts.get(topic, 0), policies.get(topic) or "delete")
            for topic in present
        }
    except (KafkaError, OSError) as exc:
        raise BrokerUnavailable(f"lost the Kafka brokers while describing topics: {exc}") from exc
    finally:
        await admin.close()


def _cleanup_policy(resource: dict[str, Any]) -> str | None:
    for entry in resource.get("config_entries", ()):
        name = entry.get("config_names", entry.get("config_name"))
        if name == "cleanup.policy":
            value: str | None = entry.get("config_value")
            return value
    return None


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--brokers", default=None, help="bootstrap servers, comma separated")
    parser.add_argument(
        "--partitions", type=int, default=None, help="the partition count every topic must have"
    )
    parser.add_argument(
        "--timeout", type=float, default=10.0, help="seconds to wait for the brokers (default 10)"
    )


def run(args: argparse.Namespace) -> int:
    overrides: dict[str, Any] = {}
    if args.brokers is not None:
        overrides["brokers"] = args.brokers
    if args.partitions is not None:
        overrides["partitions"] = args.partitions
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        print(f"lineguard check-topics: invalid settings:\n{exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.timeout <= 0:
        print("lineguard check-topics: --timeout must be positive", file=sys.stderr)
        return EXIT_USAGE

    from workers.stream.clients import BrokerUnavailable

    try:
        found = asyncio.run(describe(settings, args.timeout))
    except BrokerUnavailable as exc:
        print(f"lineguard check-topics: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    found_problems = problems(settings, found)
    for problem in found_problems:
        print(f"problem: {problem}")
    if found_problems:
        return EXIT_PROBLEM
    policies = settings.topics.policies
    shared = len([topic for topic in found if topic != policies])
    print(
        f"ok: {shared} topics with {settings.partitions} partitions each, "
        f"changelog {settings.topics.changelog} and overrides {settings.topics.overrides} "
        "compacted" + (f"; {policies} with one partition, compacted" if policies in found else "")
    )
    return EXIT_OK
