"""Collectors' stream processing: operators, workflows, routing, Faust agents, delivery and services."""
