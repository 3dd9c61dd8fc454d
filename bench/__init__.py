"""Benchmarks of the collectors worker against plain aiokafka loops and a naive Faust agent (``make bench``)."""
