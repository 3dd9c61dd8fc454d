"""The alert rules in deploy/ and the metrics documented in docs/OPERATIONS.md name metrics that exist."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from .test_metrics import API_METRICS, GROUP_METRICS, WORKER_METRICS

ROOT = Path(__file__).parents[2]
BASE_NAMES = {re.sub(r"_(total|bucket)$", "", name) for name in WORKER_METRICS | API_METRICS | GROUP_METRICS}


def test_the_three_alerts_are_prometheus_rules_on_real_metrics() -> None:
    document = yaml.safe_load((ROOT / "deploy" / "alerts.yml").read_text(encoding="utf-8"))
    rules = {rule["alert"]: rule for group in document["groups"] for rule in group["rules"]}
    assert set(rules) == {"CollectorsLagGrowing", "CollectorsDeadLettersRising", "CollectorPaused"}
    for name, rule in rules.items():
        assert re.fullmatch(r"\d+[smh]", rule["for"]), name
        assert rule["labels"]["severity"] in {"info", "warning", "critical"}
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        named = {re.sub(r"_(total|bucket|sum|count)$", "", m) for m in re.findall(r"collectors_[a-z_]+", rule["expr"])}
        assert named and named <= BASE_NAMES, f"{name} uses unknown metrics {named - BASE_NAMES}"
        assert rule["expr"].count("(") == rule["expr"].count(")"), name


def test_every_metric_is_documented() -> None:
    text = (ROOT / "docs" / "OPERATIONS.md").read_text(encoding="utf-8")
    for name in BASE_NAMES:
        assert f"`{name}" in text, f"{name} is not in docs/OPERATIONS.md"
    assert "(funnel-page.png)" in text and (ROOT / "docs" / "funnel-page.png").stat().st_size > 10_000
