"""The control plane: collectors and workflows stored in a compacted Kafka topic, read whole by every worker."""
