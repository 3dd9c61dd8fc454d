"""A real single-node Apache Kafka (KRaft) broker for development and tests, managed from Python."""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from .fetch import LocalKafkaError, fetch_jars, is_fetched, java_executable
from .probe import fetch_metadata

HOME_ENV = "COLLECTORS_KAFKA_HOME"
DIST_ENV = "COLLECTORS_KAFKA_DIST"
DEFAULT_HOME = Path("~/.cache/collectors/kafka")
NODE_ID = 1
MAIN_CLASS = "kafka.Kafka"

LOG4J_PROPERTIES = """\
log4j.rootLogger=WARN, stdout
log4j.logger.kafka.server.KafkaRaftServer=INFO
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
"""


def default_home() -> Path:
    """``$COLLECTORS_KAFKA_HOME`` or ``~/.cache/collectors/kafka``."""
    return Path(os.environ.get(HOME_ENV) or DEFAULT_HOME).expanduser()


def default_dist() -> Path:
    """``$COLLECTORS_KAFKA_DIST``, else the user's cache (``$XDG_CACHE_HOME`` or ``~/.cache``) under
    ``collectors/kafka/dist``: one download per user, whatever the broker's home."""
    env_dist = os.environ.get(DIST_ENV)
    if env_dist:
        return Path(env_dist).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "collectors" / "kafka" / "dist"


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _cluster_id() -> str:
    """A Kafka cluster id (URL-safe base64 of 16 random bytes), as ``StorageTool random-uuid`` makes."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


def _cmdline(pid: int) -> str | None:
    """The command line of a live, non-zombie process, or None when there is no such process."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)  # reap our own exited child, else it lingers as a zombie
    proc = Path(f"/proc/{pid}")
    if Path("/proc/self").is_dir():
        try:
            if proc.joinpath("stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return None
            return proc.joinpath("cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError):
            return None
    done = subprocess.run(["ps", "-o", "stat=,command=", "-p", str(pid)], capture_output=True, text=True)
    fields = done.stdout.strip().split(None, 1)
    if done.returncode != 0 or len(fields) < 2 or fields[0].startswith("Z"):
        return None
    return fields[1]


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


@dataclass(frozen=True, slots=True)
class KafkaStatus:
    """What ``LocalKafka.status()`` reports."""

    state: Literal["running", "stopped"]
    pid: int | None
    answering: bool
    bootstrap_servers: str
    run_dir: str
    log_file: str

    @property
    def running(self) -> bool:
        """True while the broker process this home started is alive."""
        return self.state == "running"

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return asdict(self)


@dataclass(kw_only=True)
class LocalKafka:
    """One single-node KRaft broker: jars cached in ``dist``, config, data, log and pid in ``run_dir``.

    ``controller_port`` defaults to ``port + 1`` (9093 for the default port 9092); ``dist`` defaults to
    :func:`default_dist`, so every home (each test run, each ``--home``) shares one download.
    """

    version: str = "3.9.1"
    host: str = "127.0.0.1"
    port: int = 9092
    controller_port: int | None = None
    home: Path = field(default_factory=default_home)
    dist: Path | None = None
    heap: str = "512m"
    echo: Callable[[str], None] = field(default=_stderr, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.home = Path(self.home).expanduser()
        if self.controller_port is None:
            self.controller_port = self.port + 1
        self.dist = default_dist() if self.dist is None else Path(self.dist).expanduser()
        if self.controller_port == self.port:
            raise LocalKafkaError(f"port and controller port are both {self.port}; pick two ports")

    @property
    def bootstrap_servers(self) -> str:
        """``host:port`` for Kafka clients (Faust takes ``kafka://`` + this)."""
        return f"{self.host}:{self.port}"

    @property
    def libs_dir(self) -> Path:
        """Where the Kafka jars of ``version`` live."""
        assert self.dist is not None
        return self.dist / self.version / "libs"

    @property
    def run_dir(self) -> Path:
        """Per-port directory with the broker's config, data, log and pid file."""
        return self.home / "run" / str(self.port)

    @property
    def data_dir(self) -> Path:
        """The KRaft log directory (topics and metadata); kept across up/down."""
        return self.run_dir / "data"

    @property
    def log_file(self) -> Path:
        """The broker's stdout and stderr."""
        return self.run_dir / "kafka.log"

    @property
    def pid_file(self) -> Path:
        """Holds the pid of the broker this object started."""
        return self.run_dir / "kafka.pid"

    @property
    def server_properties(self) -> Path:
        """The broker configuration written by ``up``."""
        return self.run_dir / "server.properties"

    def fetch(self) -> Path:
        """Download the Kafka jars with Maven unless already cached; returns the jar directory."""
        if is_fetched(self.libs_dir):
            self.echo(f"Apache Kafka {self.version} already fetched ({self.libs_dir})")
            return self.libs_dir
        return fetch_jars(self.version, self.libs_dir, self.echo)

    def status(self) -> KafkaStatus:
        """Whether the broker started from this home and port is running, and whether it answers."""
        pid = self._live_pid()
        return KafkaStatus(
            state="running" if pid is not None else "stopped",
            pid=pid,
            answering=pid is not None and self._answers(),
            bootstrap_servers=self.bootstrap_servers,
            run_dir=str(self.run_dir),
            log_file=str(self.log_file),
        )

    def up(self, wait_s: float = 60, *, reset: bool = False) -> KafkaStatus:
        """Start the broker detached and wait until it serves Metadata requests.

        Idempotent: a broker already running from this home and port is only waited for. ``reset``
        stops it and deletes its topics and offsets first.
        """
        if reset:
            self.down()
            shutil.rmtree(self.data_dir, ignore_errors=True)
        pid = self._live_pid()
        if pid is not None:
            self.echo(f"Kafka is already running at {self.bootstrap_servers} (pid {pid})")
            self._wait_ready(pid, None, wait_s)
            return self.status()
        for port in (self.port, self.controller_port):
            assert port is not None
            if _port_open(self.host, port):
                raise LocalKafkaError(
                    f"{self.host}:{port} is already in use by a process this home ({self.home}) did not "
                    f"start; stop it, or pick another port (the controller takes port + 1)"
                )
        java = java_executable()
        fetch_jars(self.version, self.libs_dir, self.echo)
        self._write_config()
        self._format_storage(java)
        started = time.monotonic()
        with self.log_file.open("wb") as log:
            process = subprocess.Popen(
                self._java_command(java),
                cwd=self.run_dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pid_file.write_text(f"{process.pid}\n")
        self.echo(f"starting Kafka {self.version} at {self.bootstrap_servers} (pid {process.pid}) …")
        self._wait_ready(process.pid, process, wait_s)
        self.echo(f"Kafka is up at {self.bootstrap_servers} in {time.monotonic() - started:.1f}s")
        return self.status()

    def down(self, timeout: float = 30) -> bool:
        """Stop the broker this home started (SIGTERM, then SIGKILL after ``timeout``).

        Returns True if a broker was stopped. Only the pid in the pid file is signalled, and only when
        its command line is this home's ``kafka.Kafka``; a stale pid file is just removed.
        """
        pid = self._live_pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            self.echo(f"Kafka at {self.bootstrap_servers} is not running")
            return False
        self.echo(f"stopping Kafka at {self.bootstrap_servers} (pid {pid}) …")
        os.kill(pid, signal.SIGTERM)
        if not self._wait_exit(pid, timeout):
            self.echo(f"Kafka did not stop within {timeout:g}s; killing pid {pid}")
            os.kill(pid, signal.SIGKILL)
            if not self._wait_exit(pid, 10):
                raise LocalKafkaError(f"pid {pid} survived SIGKILL; check `ps -p {pid}`")
        self.pid_file.unlink(missing_ok=True)
        self.echo("Kafka stopped")
        return True

    def _live_pid(self) -> int | None:
        """The pid from the pid file if that process is alive and is this home's broker."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        cmdline = _cmdline(pid)
        if cmdline is None or MAIN_CLASS not in cmdline or str(self.server_properties) not in cmdline:
            return None
        return pid

    def _answers(self) -> bool:
        try:
            metadata = fetch_metadata(self.host, self.port, timeout=1.0)
        except (OSError, ValueError):
            return False
        return any(b.node_id == NODE_ID and b.port == self.port for b in metadata.brokers)

    def _wait_ready(self, pid: int, process: subprocess.Popen[bytes] | None, wait_s: float) -> None:
        deadline = time.monotonic() + wait_s
        while not self._answers():
            exited = process.poll() is not None if process is not None else _cmdline(pid) is None
            if exited or time.monotonic() > deadline:
                if exited:
                    self.pid_file.unlink(missing_ok=True)
                    problem = "exited during startup"
                else:
                    problem = f"did not answer a Metadata request within {wait_s:g}s (still running)"
                raise LocalKafkaError(
                    f"Kafka at {self.bootstrap_servers} {problem}. Last lines of {self.log_file}:\n"
                    f"{self._log_tail()}\nFix the cause, then `collectors kafka down` and `up` again "
                    f"(`up --reset` discards the data)."
                )
            time.sleep(0.25)

    def _wait_exit(self, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while _cmdline(pid) is not None:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True

    def _log_tail(self, lines: int = 25) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) or "(log is empty)"

    def _java_command(self, java: str) -> list[str]:
        return [
            java, f"-Xmx{self.heap}", f"-Xms{min(self.heap, '256m', key=_heap_bytes)}",
            "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlog4j.configuration=file:{self.run_dir / 'log4j.properties'}",
            "-cp", f"{self.libs_dir}{os.sep}*",
            MAIN_CLASS, str(self.server_properties),
        ]  # fmt: skip

    def _write_config(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(exist_ok=True)
        self.server_properties.write_text(self._render_server_properties())
        (self.run_dir / "log4j.properties").write_text(LOG4J_PROPERTIES)

    def _render_server_properties(self) -> str:
        settings = {
            "process.roles": "broker,controller",
            "node.id": NODE_ID,
            "controller.quorum.voters": f"{NODE_ID}@{self.host}:{self.controller_port}",
            "listeners": f"PLAINTEXT://{self.host}:{self.port},CONTROLLER://{self.host}:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{self.bootstrap_servers}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": self.data_dir,
            "num.partitions": 1,
            "auto.create.topics.enable": "true",
            "offsets.topic.replication.factor": 1,
            "offsets.topic.num.partitions": 4,
            "transaction.state.log.replication.factor": 1,
            "transaction.state.log.min.isr": 1,
            "transaction.state.log.num.partitions": 4,
            "group.initial.rebalance.delay.ms": 0,
            "log.segment.bytes": 64 * 1024 * 1024,
            "log.cleaner.dedupe.buffer.size": 32 * 1024 * 1024,
            "num.network.threads": 2,
            "num.io.threads": 4,
            "num.recovery.threads.per.data.dir": 1,
        }
        lines = [f"{key}={value}" for key, value in settings.items()]
        return "# Written by streams.tools.localkafka on every `up`; edits are overwritten.\n" + "\n".join(lines) + "\n"

    def _format_storage(self, java: str) -> None:
        if (self.data_dir / "meta.properties").is_file():
            return
        cmd = [
            java, "-Xmx256m", f"-Dlog4j.configuration=file:{self.run_dir / 'log4j.properties'}",
            "-cp", f"{self.libs_dir}{os.sep}*", "kafka.tools.StorageTool", "format",
            "-t", _cluster_id(), "-c", str(self.server_properties),
        ]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise LocalKafkaError(
                f"formatting {self.data_dir} failed (exit {done.returncode}); "
                f"run `collectors kafka up --reset` to start from empty storage.\n{done.stdout}{done.stderr}"
            )


def _heap_bytes(size: str) -> int:
    """``512m`` → bytes, for comparing JVM heap sizes."""
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    suffix = size[-1:].lower()
    return int(size[:-1]) * units[suffix] if suffix in units else int(size)
