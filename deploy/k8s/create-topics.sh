#!/bin/sh
# Creates lineguard's topics with Kafka's own kafka-topics.sh (the apache/kafka image has it):
# inputs and outputs co-partitioned, all with the same partition count, and the state
# changelog and the per-user overrides compacted. It reads the workers' own LINEGUARD_* settings, so it creates exactly
# the topics they expect. Safe to run again: existing topics are kept, but one whose
# partition count differs is an error, since it would break co-partitioning.
# Used by docker-compose.yml (kafka-init) and deploy/k8s/topics-job.yaml.
#
# Environment (the workers' settings; defaults are theirs):
#   LINEGUARD_BROKERS                 required, host:port[,host:port]
#   LINEGUARD_PARTITIONS              default 6
#   LINEGUARD_REPLICATION_FACTOR      default 1
#   LINEGUARD_TOPICS__<NAME>          topic name overrides, e.g. LINEGUARD_TOPICS__DECISIONS
#   LINEGUARD_SECURITY__PROTOCOL      PLAINTEXT (default), SSL, SASL_PLAINTEXT or SASL_SSL
#   LINEGUARD_SECURITY__SASL_MECHANISM  PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (default)
#   LINEGUARD_SECURITY__SASL_USERNAME, LINEGUARD_SECURITY__SASL_PASSWORD
#   LINEGUARD_SECURITY__SSL_CAFILE    PEM file of the brokers' CA
# and of this script only:
#   MIN_INSYNC_REPLICAS   default 2 when the replication factor is 3 or more, else 1
#   KAFKA_COMMAND_CONFIG  a client properties file to use as is (other auth, keystores)
#   KAFKA_BIN             default /opt/kafka/bin
set -eu

BROKERS="${LINEGUARD_BROKERS:?LINEGUARD_BROKERS is required}"
PARTITIONS="${LINEGUARD_PARTITIONS:-6}"
REPLICATION_FACTOR="${LINEGUARD_REPLICATION_FACTOR:-1}"
MIN_INSYNC_REPLICAS="${MIN_INSYNC_REPLICAS:-$((REPLICATION_FACTOR >= 3 ? 2 : 1))}"
KAFKA_BIN="${KAFKA_BIN:-/opt/kafka/bin}"

INPUT_TOPICS="${LINEGUARD_TOPICS__LOGIN:-lineguard.login}
${LINEGUARD_TOPICS__DEVICE_CHANGE:-lineguard.device-change}
${LINEGUARD_TOPICS__BANK_CARD_CHANGE:-lineguard.bank-card-change}
${LINEGUARD_TOPICS__PROFILE_CHANGE:-lineguard.profile-change}
${LINEGUARD_TOPICS__TRANSACTION:-lineguard.transaction}
${LINEGUARD_TOPICS__REPAYMENT:-lineguard.repayment}"
OUTPUT_TOPICS="${LINEGUARD_TOPICS__DECISIONS:-lineguard.decisions}
${LINEGUARD_TOPICS__FLAGS:-lineguard.flags}
${LINEGUARD_TOPICS__SHADOW_DECISIONS:-lineguard.shadow-decisions}
${LINEGUARD_TOPICS__DEAD_LETTER:-lineguard.dead-letter}"
CHANGELOG_TOPIC="${LINEGUARD_TOPICS__CHANGELOG:-lineguard.changelog}"
OVERRIDES_TOPIC="${LINEGUARD_TOPICS__OVERRIDES:-lineguard.overrides}"
POLICIES_TOPIC="${LINEGUARD_TOPICS__POLICIES:-lineguard.policies}"

command_config="${KAFKA_COMMAND_CONFIG:-}"
protocol="${LINEGUARD_SECURITY__PROTOCOL:-PLAINTEXT}"
if [ -z "$command_config" ] && [ "$protocol" != PLAINTEXT ]; then
  command_config="$(mktemp)"
  trap 'rm -f "$command_config"' EXIT
  echo "security.protocol=$protocol" >"$command_config"
  if [ -n "${LINEGUARD_SECURITY__SSL_CAFILE:-}" ]; then
    {
      echo "ssl.truststore.type=PEM"
      echo "ssl.truststore.location=$LINEGUARD_SECURITY__SSL_CAFILE"
    } >>"$command_config"
  fi
  case "$protocol" in
    SASL_*)
      mechanism="${LINEGUARD_SECURITY__SASL_MECHANISM:-SCRAM-SHA-512}"
      case "$mechanism" in
        PLAIN) module=org.apache.kafka.common.security.plain.PlainLoginModule ;;
        SCRAM-SHA-256 | SCRAM-SHA-512) module=org.apache.kafka.common.security.scram.ScramLoginModule ;;
        *) echo "unsupported SASL mechanism: $mechanism" >&2; exit 2 ;;
      esac
      {
        echo "sasl.mechanism=$mechanism"
        printf 'sasl.jaas.config=%s required username="%s" password="%s";\n' "$module" \
          "${LINEGUARD_SECURITY__SASL_USERNAME:?LINEGUARD_SECURITY__SASL_USERNAME is required}" \
          "${LINEGUARD_SECURITY__SASL_PASSWORD:?LINEGUARD_SECURITY__SASL_PASSWORD is required}"
      } >>"$command_config"
      ;;
  esac
fi

topics() {
  if [ -n "$command_config" ]; then
    "$KAFKA_BIN/kafka-topics.sh" --bootstrap-server "$BROKERS" --command-config "$command_config" "$@"
  else
    "$KAFKA_BIN/kafka-topics.sh" --bootstrap-server "$BROKERS" "$@"
  fi
}

create() {
  topic="$1"
  shift
  topics --create --if-not-exists --topic "$topic" --partitions "$PARTITIONS" \
    --replication-factor "$REPLICATION_FACTOR" \
    --config "min.insync.replicas=$MIN_INSYNC_REPLICAS" "$@"
  count="$(topics --describe --topic "$topic" \
    | sed -n 's/.*PartitionCount:[[:space:]]*\([0-9][0-9]*\).*/\1/p' | head -n 1)"
  if [ "$count" != "$PARTITIONS" ]; then
    echo "topic $topic has ${count:-no} partitions, expected $PARTITIONS" >&2
    exit 1
  fi
  echo "topic $topic: $count partitions"
}

for topic in $INPUT_TOPICS $OUTPUT_TOPICS; do
  create "$topic"
done
# State changelog and per-user overrides: co-partitioned with the inputs, compacted by user.
for topic in "$CHANGELOG_TOPIC" "$OVERRIDES_TOPIC"; do
  create "$topic" --config cleanup.policy=compact
  if ! topics --describe --topic "$topic" | grep -q 'cleanup\.policy=compact'; then
    echo "topic $topic exists but is not compacted: set cleanup.policy=compact" >&2
    exit 1
  fi
done
# Published policies: one partition (one order for every worker), compacted by role.
topics --create --if-not-exists --topic "$POLICIES_TOPIC" --partitions 1 \
  --replication-factor "$REPLICATION_FACTOR" \
  --config "min.insync.replicas=$MIN_INSYNC_REPLICAS" --config cleanup.policy=compact
echo "topic $POLICIES_TOPIC: 1 partition, compacted"
