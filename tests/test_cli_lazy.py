"""The ``collectors`` command imports a command's modules only when that command runs: ``collectors stats``
does not load the operators, the worker or the destination's server."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest

from streams.tools.cli import LAZY_COMMANDS, main
from streams.tools.manage.commands import MANAGEMENT_COMMANDS

HEAVY = ("streams.core.operators", "streams.worker", "streams.services", "faust", "PIL", "imagehash")


@pytest.mark.parametrize("name", sorted(LAZY_COMMANDS))
def test_each_lazy_command_is_found_under_its_name(name: str) -> None:
    with click.Context(main) as ctx:
        command = main.get_command(ctx, name)
    assert command is not None and command.name == name


def test_every_management_command_is_registered() -> None:
    assert {command.name for command in MANAGEMENT_COMMANDS} <= set(LAZY_COMMANDS)


def test_stats_loads_no_other_commands_modules() -> None:
    probe = (
        "import sys\n"
        "from streams.tools.cli import main\n"
        "try:\n"
        "    main(['stats', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print(sorted(m for m in sys.modules if m.startswith({HEAVY!r})))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    assert "Each collector's funnel" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout
