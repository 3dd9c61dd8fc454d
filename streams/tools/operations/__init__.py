"""Operations on a running deployment, from the command line: stats, dead letters, replay and backfill.

Each reads Kafka directly (no consumer group, nothing committed) and posts with the worker's own
:class:`~streams.delivery.poster.Poster` and input ids, so running one twice cannot duplicate an input.
"""
