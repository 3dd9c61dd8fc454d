#!/usr/bin/env bash
# Start a one-node KRaft broker. Every KAFKA_FOO_BAR variable becomes the property foo.bar (as in the
# apache/kafka image); CLUSTER_ID names the cluster. Storage is formatted on first start only.
set -euo pipefail
props=/etc/kafka/server.properties
{
  echo "# Written from KAFKA_* variables at container start."
  echo "process.roles=${KAFKA_PROCESS_ROLES:-broker,controller}"
  echo "node.id=${KAFKA_NODE_ID:-1}"
  echo "controller.quorum.voters=${KAFKA_CONTROLLER_QUORUM_VOTERS:-1@localhost:9093}"
  echo "listeners=${KAFKA_LISTENERS:-PLAINTEXT://:9092,CONTROLLER://:9093}"
  echo "advertised.listeners=${KAFKA_ADVERTISED_LISTENERS:-PLAINTEXT://localhost:9092}"
  echo "controller.listener.names=${KAFKA_CONTROLLER_LISTENER_NAMES:-CONTROLLER}"
  echo "listener.security.protocol.map=${KAFKA_LISTENER_SECURITY_PROTOCOL_MAP:-CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT}"
  echo "log.dirs=${KAFKA_LOG_DIRS:-/var/lib/kafka/data}"
  echo "offsets.topic.replication.factor=${KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR:-1}"
  echo "transaction.state.log.replication.factor=${KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR:-1}"
  echo "transaction.state.log.min.isr=${KAFKA_TRANSACTION_STATE_LOG_MIN_ISR:-1}"
  skip=" KAFKA_PROCESS_ROLES KAFKA_NODE_ID KAFKA_CONTROLLER_QUORUM_VOTERS KAFKA_LISTENERS KAFKA_ADVERTISED_LISTENERS KAFKA_CONTROLLER_LISTENER_NAMES KAFKA_LISTENER_SECURITY_PROTOCOL_MAP KAFKA_LOG_DIRS KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR KAFKA_TRANSACTION_STATE_LOG_MIN_ISR KAFKA_HEAP_OPTS KAFKA_HEALTH_PORT "
  while IFS='=' read -r name value; do
    case "$name" in KAFKA_*) ;; *) continue ;; esac
    [[ "$skip" == *" $name "* ]] && continue
    key=$(tr '[:upper:]_' '[:lower:].' <<<"${name#KAFKA_}")
    echo "$key=$value"
  done < <(env)
} > "$props"
cp="/opt/kafka/libs/*"
log_dir=${KAFKA_LOG_DIRS:-/var/lib/kafka/data}
if [ ! -f "$log_dir/meta.properties" ]; then
  java -Xmx256m -cp "$cp" kafka.tools.StorageTool format -t "${CLUSTER_ID:?set CLUSTER_ID (any 22-character base64 id)}" -c "$props"
fi
# shellcheck disable=SC2086
exec java ${KAFKA_HEAP_OPTS:--Xmx512m -Xms256m} -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError \
  -Djava.awt.headless=true -cp "$cp" kafka.Kafka "$props"
