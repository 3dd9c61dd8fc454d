"""Reading the deployment files: the Kubernetes base rendered, the compose file, and what the code knows."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import yaml

from streams.core.secrets import ENV_SECRET, ENV_SECRET_FILE
from streams.tools.cli import main as cli
from streams.worker.settings import WorkerSettings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
# Read by the image's HEALTHCHECK (deploy/Dockerfile), not by the code.
IMAGE_ENV = {"COLLECTORS_HEALTH_URL"}


def render_k8s() -> list[dict[str, Any]]:
    """The base as `kustomize build` renders it, or its resource files as they are when kustomize is absent."""
    kustomize = shutil.which("kustomize")
    if kustomize:
        done = subprocess.run([kustomize, "build", str(K8S)], capture_output=True, text=True, check=True)
        return [doc for doc in yaml.safe_load_all(done.stdout) if doc]
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    docs = []
    for name in kustomization["resources"]:
        docs.extend(doc for doc in yaml.safe_load_all((K8S / name).read_text()) if doc)
    return docs


def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return document


CONTEXT = click.Context(cli)


def subcommand(group: click.Command, name: str) -> click.Command | None:
    """A group's subcommand by name (the CLI loads its commands lazily), None if it has none."""
    return group.get_command(CONTEXT, name) if isinstance(group, click.Group) else None


def walk(command: click.Command, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    yield path, command
    if isinstance(command, click.Group):
        for name in command.list_commands(CONTEXT):
            sub = subcommand(command, name)
            if sub is not None:
                yield from walk(sub, (*path, name))


def known_env() -> set[str]:
    """Every COLLECTORS_* variable something reads: worker settings, CLI options, the image, the examples."""
    names = {f"COLLECTORS_{name.upper()}" for name in WorkerSettings.model_fields} | IMAGE_ENV
    names |= {ENV_SECRET, ENV_SECRET_FILE}
    for example in ROOT.joinpath("examples").rglob("*.yaml"):
        names.update(re.findall(r"\$\{(\w+)", example.read_text()))
    for _path, command in walk(cli):
        for param in command.params:
            envvar = param.envvar
            names.update([envvar] if isinstance(envvar, str) else list(envvar or ()))
    return names


def command_exists(args: list[str]) -> bool:
    """Whether `collectors ARGS` names a real command (options after it are not checked here)."""
    command: click.Command | None = cli
    for word in args:
        if word.startswith("-") or not isinstance(command, click.Group):
            break
        command = subcommand(command, word)
        if command is None:
            return False
    return not isinstance(command, click.Group)


def command_options(args: list[str]) -> set[str]:
    """The long options of the command `collectors ARGS` names."""
    command: click.Command | None = cli
    for word in args:
        if word.startswith("-") or not isinstance(command, click.Group):
            break
        command = subcommand(command, word)
    assert command is not None, args
    return {opt for param in command.params for opt in getattr(param, "opts", []) if opt.startswith("--")}


def dockerfile_ports() -> set[int]:
    text = (DEPLOY / "Dockerfile").read_text()
    return {int(port) for line in re.findall(r"^EXPOSE (.+)$", text, re.M) for port in line.split()}
