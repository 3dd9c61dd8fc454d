"""Delivery to destination apps: idempotent input ids, batching, and the HTTP poster with retries."""
