"""A throwaway PostgreSQL cluster for the tests: initdb into a temporary directory, served on a free loopback port."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg
from psycopg import sql

from streams.tools.localstack import free_port

INSTALL_HINT = "install PostgreSQL's server (Debian/Ubuntu: sudo apt-get install postgresql)"
SERVER_USER = "postgres"  # the OS user Debian's package creates; PostgreSQL refuses to run as root
# Durability is worthless in a cluster deleted after the session; without it, commits cost no fsync.
SERVER_SETTINGS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off", "listen_addresses=127.0.0.1")


def find_bindir() -> Path | None:
    """The directory holding initdb and pg_ctl (`pg_config --bindir`, PATH, the newest /usr/lib/postgresql/*/bin)."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        found = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if found.returncode == 0 and found.stdout.strip():
            candidates.append(Path(found.stdout.strip()))
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).parent)
    installed = Path("/usr/lib/postgresql").glob("*/bin")
    candidates += sorted(installed, key=lambda path: [int(n) for n in path.parent.name.split(".") if n.isdigit()])[::-1]
    return next((path for path in candidates if (path / "initdb").is_file() and (path / "pg_ctl").is_file()), None)


def running_in_ci() -> bool:
    """Whether the CI variable is set (`.ci/run` sets it): there, missing PostgreSQL fails the tests."""
    return os.environ.get("CI", "").lower() not in ("", "0", "false")


class LocalPostgres:
    """A PostgreSQL cluster of its own in a temporary directory; `stop` shuts it down and deletes it."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.home = Path(tempfile.mkdtemp(prefix="collectors-pg-"))
        self.port = free_port()
        self._as_root = os.geteuid() == 0

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def log(self) -> Path:
        return self.home / "server.log"

    def url(self, database: str = "postgres") -> str:
        """The URL of `database` on this cluster (trust authentication: no password)."""
        return f"postgresql://{SERVER_USER}@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        """initdb, then start the server and wait until it accepts connections."""
        if self._as_root:
            try:
                pwd.getpwnam(SERVER_USER)
            except KeyError:
                raise RuntimeError(
                    f"PostgreSQL refuses to run as root and there is no {SERVER_USER!r} user to run it as; "
                    f"{INSTALL_HINT} (its package creates that user) or run the tests as another user"
                ) from None
            shutil.chown(self.home, SERVER_USER)
        self._run(
            "initdb", "-D", str(self.data), "-U", SERVER_USER, "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync"
        )
        options = " ".join([f"-p {self.port}", f"-k {self.home}", *(f"-c {setting}" for setting in SERVER_SETTINGS)])
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start")

    def stop(self) -> None:
        """Stop the server (immediately: nothing in it is worth a clean shutdown) and delete the cluster."""
        try:
            if (self.data / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.home, ignore_errors=True)

    def create_database(self, name: str) -> str:
        """Create database `name`; its URL."""
        with psycopg.connect(self.url(), autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bindir / program), *args]
        if self._as_root:
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        done = subprocess.run(command, cwd=self.home, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{program} failed ({done.returncode}): {done.stderr.strip()}\n{log}".strip())
