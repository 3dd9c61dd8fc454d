"""The live funnel page in a real browser (Debian's chromium, driven by selenium through chromium-driver):
every collector of the run with the ledger's numbers, the paused one with its last error, dead letters by
reason, lag per partition; numbers that change without a reload; no console errors; screenshots at 1280x800
and 390x844 kept as test artifacts."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.core import ledger as outcome
from streams.kafka.ledgers import from_changelogs
from streams.services.management.funnel import NOT_JUDGED
from streams.tools.localkafka.broker import LocalKafka
from streams.tools.localstack import wait_settled
from streams.tools.manage.client import ControlClient
from streams.tools.samples.generate import events
from tests.e2e.management_support import APP, USER, collector_body, listed, new_key, revoke, wait_ready
from tests.operations.support import config

from .support import scrape, start_control_api, value

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
ARTIFACTS = Path(os.environ.get("COLLECTORS_TEST_ARTIFACTS", ".collectors/test-artifacts"))
"""Where the screenshots go (the CI keeps this folder)."""
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
SHOWN = (outcome.SEEN, outcome.QUEUED, outcome.POSTED, outcome.DUPLICATE, outcome.DEAD_LETTERED, outcome.DROPPED)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """A headless chromium with a fresh profile, its console log kept."""
    if CHROMIUM is None or CHROMEDRIVER is None:
        if os.environ.get("CI"):
            pytest.fail("chromium and chromium-driver are needed: .ci/run installs them (apt-get)")
        pytest.skip("chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as DriverService

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}", "--window-size=1280,800"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=DriverService(executable_path=CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def wait_until(condition: Callable[[], Any], *, timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(0.25)
    raise TimeoutError(f"timed out after {timeout_s:.0f}s waiting for {what} (last: {last!r})")


def shown_funnels(driver: Any) -> dict[str, dict[str, int]]:
    """Each collector card's counts, as the page shows them."""
    script = """
      const funnels = {};
      for (const card of document.querySelectorAll('[data-collector]')) {
        const counts = {};
        for (const cell of card.querySelectorAll('[data-count]')) {
          counts[cell.dataset.count] = Number(cell.textContent.replace(/,/g, ''));
        }
        funnels[card.dataset.collector] = counts;
      }
      return funnels;"""
    funnels: dict[str, dict[str, int]] = driver.execute_script(script)
    return funnels


def expected_funnels(ledger_collectors: dict[str, Any], ids: set[str]) -> dict[str, dict[str, int]]:
    """What the page must show for the ledger's funnels (every collector in ``ids``)."""
    expected = {}
    for cid in ids:
        counts = ledger_collectors.get(cid, {})
        shown = {name: counts.get(name, 0) for name in SHOWN}
        for name, n in counts.items():
            if name.startswith(outcome.FILTERED_PREFIX):
                shown[f"out:{name.removeprefix(outcome.FILTERED_PREFIX)}"] = n
            elif name.startswith(outcome.POST_FILTERED_PREFIX):
                shown[f"out:after queue: {name.removeprefix(outcome.POST_FILTERED_PREFIX)}"] = n
        for name, label in NOT_JUDGED.items():
            if counts.get(name):
                shown[f"out:{label}"] = counts[name]
        expected[cid] = shown
    return expected


def fits_the_width(driver: Any) -> bool:
    return bool(driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth"))


async def test_the_funnel_page_shows_the_ledger_live(
    tmp_path, kafka: LocalKafka, topic_factory, producer_factory, destination_factory, worker_factory, unique, browser
) -> None:
    destination = destination_factory()
    pets_key = destination.add_app(USER, APP)
    api = start_control_api(f"kafka://{kafka.bootstrap_servers}", unique, destination.url, tmp_path / "api.log")
    try:
        owner = ControlClient(api.url, new_key(destination, "ownr", app_id=None), timeout_s=30)
        gate_key = new_key(destination, "gate")
        gate = collector_body("gatekeeper", destination.url, gate_key, pre_queue_random_sample=0.5)
        await asyncio.to_thread(owner.create, "collectors", USER, APP, [gate])
        predictions = await topic_factory("predictions")
        await topic_factory("queue")
        worker = worker_factory(config(tmp_path / "collectors.yaml", destination.url), env={"TEST_PETS_KEY": pets_key})
        wait_ready([worker], timeout_s=60)
        revoke(destination, gate_key)  # the destination refuses it: the worker pauses the collector, with why
        lines = [orjson.dumps(e) for e in events(300, seed=21)] + [b"not json"]
        await producer_factory(predictions, lines)
        wait_settled([worker], events=len(lines), timeout_s=120)
        gatekeeper = f"{USER}/{APP}/gatekeeper"
        wait_until(lambda: listed(worker)[gatekeeper]["status"] == "paused", timeout_s=30, what="the pause")
        ids = {gatekeeper, f"{USER}/{APP}/quarter", f"{USER}/{APP}/bob-all"}

        browser.get(api.url + "/")
        browser.execute_script("window.loadedOnce = true")  # gone if the page reloads

        async def ledger_now() -> dict[str, dict[str, int]]:
            ledger, _missing = await from_changelogs(kafka.bootstrap_servers, unique)
            return expected_funnels(ledger.snapshot()["collectors"], ids)

        expected = await ledger_now()
        assert expected[gatekeeper][outcome.DEAD_LETTERED] > 0
        await asyncio.to_thread(
            wait_until, lambda: shown_funnels(browser) == expected, timeout_s=30, what="the ledger's numbers"
        )
        paused = browser.find_element("css selector", f'[data-paused="{gatekeeper}"]').text
        assert "refused the key" in paused and gate_key[:4] in paused and gate_key not in paused
        dead_letters = browser.find_element("id", "dead-letters").text
        assert "auth" in dead_letters and "(undecodable events)" in dead_letters
        assert len(browser.find_elements("css selector", "#lag tbody tr")) == 8
        assert fits_the_width(browser)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        assert browser.save_screenshot(str(ARTIFACTS / "funnel-page-1280x800.png"))

        # More events: the numbers change without a reload.
        more = [orjson.dumps(e) for e in events(200, seed=22, start=1000)]
        await producer_factory(predictions, more)
        wait_settled([worker], events=len(lines) + len(more), timeout_s=120)
        grown = await ledger_now()
        assert grown != expected
        await asyncio.to_thread(
            wait_until, lambda: shown_funnels(browser) == grown, timeout_s=30, what="the new numbers"
        )
        assert browser.execute_script("return window.loadedOnce === true"), "the page reloaded"
        lags = "return [...document.querySelectorAll('#lag tbody tr td:last-child')].map((td) => td.textContent)"
        await asyncio.to_thread(
            wait_until, lambda: browser.execute_script(lags) == ["0"] * 8, timeout_s=60, what="the lag back to 0"
        )
        group = scrape(api.url)  # the API's metrics: the workers' group as the page reads it
        lags = {labels: n for (name, labels), n in group.items() if name == "collectors_group_lag"}
        assert len(lags) == 8 and set(lags.values()) == {0.0}
        auth = value(group, "collectors_group_dead_letters", collector=gatekeeper, reason="auth")
        assert auth == grown[gatekeeper][outcome.DEAD_LETTERED]
        assert value(group, "collectors_group_dead_letters", collector="", reason="invalid_json") == 1
        rates = browser.find_element("css selector", f'[data-collector="{USER}/{APP}/quarter"] .rates').text
        assert "seen 0/min" not in rates, rates

        browser.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride", {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True}
        )
        await asyncio.to_thread(wait_until, lambda: fits_the_width(browser), timeout_s=10, what="the narrow layout")
        assert browser.save_screenshot(str(ARTIFACTS / "funnel-page-390x844.png"))

        errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
        assert errors == [], errors
    finally:
        api.stop()
