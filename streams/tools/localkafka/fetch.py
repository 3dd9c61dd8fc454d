"""Fetch the Apache Kafka jars from Maven Central, once, into a cache outside git."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path

STAMP = ".complete"


class LocalKafkaError(RuntimeError):
    """A local-broker operation failed; the message says what to do about it."""


def require_tool(name: str, package: str) -> str:
    """Return the path of an executable, or fail naming the package that provides it."""
    found = shutil.which(name)
    if found is None:
        raise LocalKafkaError(
            f"`{name}` was not found on PATH; the local Kafka broker needs it. "
            f"Install {package} (e.g. `sudo apt-get install {package}` or `brew install {package}`)."
        )
    return found


def java_executable() -> str:
    """The `java` launcher (Java 17 or newer runs Kafka 3.9)."""
    return require_tool("java", "openjdk-17-jre-headless")


def is_fetched(libs: Path) -> bool:
    """True when a previous fetch into ``libs`` ran to completion."""
    return (libs / STAMP).is_file()


def fetch_jars(version: str, libs: Path, echo: Callable[[str], None]) -> Path:
    """Copy ``kafka_2.13:<version>`` and its runtime dependencies into ``libs`` with Maven.

    Writes to a sibling temporary directory first and renames it, so an interrupted fetch never
    leaves a half-filled ``libs`` that looks complete.
    """
    if is_fetched(libs):
        return libs
    mvn = require_tool("mvn", "maven")
    java_executable()
    work = libs.parent
    work.mkdir(parents=True, exist_ok=True)
    pom = work / "pom.xml"
    pom.write_bytes(resources.files("streams.tools.localkafka").joinpath("pom.xml").read_bytes())
    partial = work / "libs.partial"
    shutil.rmtree(partial, ignore_errors=True)
    echo(f"fetching Apache Kafka {version} from Maven Central (about 46 MB, once) into {libs} …")
    started = time.monotonic()
    cmd = [
        mvn, "-B", "-q", "-Dstyle.color=never", "-f", str(pom),
        "dependency:copy-dependencies", "-DincludeScope=runtime",
        f"-DoutputDirectory={partial}", f"-Dkafka.version={version}",
    ]  # fmt: skip
    done = subprocess.run(cmd, cwd=work, capture_output=True, text=True, check=False)
    jars = sorted(partial.glob("*.jar"))
    if done.returncode != 0 or not any(j.name.startswith("kafka_2.13-") for j in jars):
        shutil.rmtree(partial, ignore_errors=True)
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-20:])
        raise LocalKafkaError(
            f"Maven could not fetch Apache Kafka {version} (exit {done.returncode}). Check that "
            f"Maven Central (https://repo.maven.apache.org) is reachable, or that ~/.m2/settings.xml "
            f"points at a mirror, then run `collectors kafka fetch` again.\n{tail}"
        )
    size_mb = sum(j.stat().st_size for j in jars) / 1e6
    shutil.rmtree(libs, ignore_errors=True)
    partial.rename(libs)
    (libs / STAMP).write_text(f"kafka_2.13 {version}\n")
    echo(f"fetched {len(jars)} jars ({size_mb:.0f} MB) in {time.monotonic() - started:.1f}s")
    return libs
