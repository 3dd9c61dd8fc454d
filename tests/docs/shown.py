"""The `collectors ...` commands the docs show, and whether the `collectors` command accepts them.

Commands are taken from shell blocks (```sh, bash, shell, console) and from inline code spans that start with
`collectors `. Synopsis notation is understood: `[optional]` parts are checked as if given, `a|b` checks
each alternative, `ID...` and `…` are placeholders, and an upper-case word or `<word>` where a subcommand
belongs stands for any subcommand. Each command goes through click's own parsers, as `--help` would leave it
(nothing runs): an unknown command, an unknown option, an option without its value or a positional argument
the command has no place for is refused.
"""

from __future__ import annotations

import itertools
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click

from streams.tools.cli import main

ROOT = Path(__file__).resolve().parents[2]
DOC_GLOBS = ("README.md", "docs/**/*.md", "deploy/**/*.md", "examples/**/*.md")
SHELL_LANGUAGES = {"sh", "bash", "shell", "console", "zsh", "shell-session"}

FENCE = re.compile(r"^\s*(```+|~~~+)\s*([\w+-]*)")
INLINE_CODE = re.compile(r"`([^`\n]+)`")
HEREDOC = re.compile(r"<<-?\s*['\"]?(\w+)['\"]?")
PLACEHOLDER = re.compile(r"^(<[^>]+>|[A-Z][A-Z0-9_]*)$")
SEPARATORS = {"|", "||", "&&", ";", "&"}
WRAPPERS = {"sudo", "env", "exec", "time", "nohup", "command"}
CONTAINER_TOOLS = {"docker", "docker-compose", "podman", "kubectl"}


@dataclass(frozen=True)
class Shown:
    """One `collectors` command as a doc shows it: where, as written, and the arguments after `collectors`."""

    path: str
    line: int
    text: str
    argv: tuple[str, ...]

    def where(self) -> str:
        return f"{self.path}:{self.line}: `{self.text}`"


def doc_files(root: Path = ROOT) -> list[Path]:
    """README.md and every Markdown file under docs/, deploy/ and examples/."""
    found = {path for pattern in DOC_GLOBS for path in root.glob(pattern)}
    return sorted(found)


def commands_in(text: str, path: str) -> list[Shown]:
    """Every `collectors` command of a Markdown document: shell blocks first, then inline code spans."""
    return [*_shell_commands(text, path), *_inline_commands(text, path)]


def _logical_lines(text: str) -> Iterator[tuple[int, str, bool]]:
    """(line number, line, inside a shell block) for each line outside fences or inside shell blocks.

    Inside a shell block, lines continued with a backslash are joined, console output (lines without a `$`
    prompt in a console block) and heredoc bodies are left out.
    """
    fence: str | None = None
    shell = console = False
    pending: list[str] = []
    start = 0
    heredoc_end: str | None = None
    for number, line in enumerate(text.splitlines(), 1):
        opened = FENCE.match(line)
        if fence is None:
            if opened:
                fence, language = opened.group(1), opened.group(2).lower()
                shell = language in SHELL_LANGUAGES
                console = language in {"console", "shell-session"}
            else:
                yield number, line, False
            continue
        if opened and opened.group(1).startswith(fence) and not opened.group(2):
            fence, pending = None, []
            continue
        if not shell:
            continue
        if heredoc_end is not None:
            heredoc_end = None if line.strip() == heredoc_end else heredoc_end
            continue
        if not pending:
            start = number
            if console:
                if not line.lstrip().startswith("$ "):
                    continue
                line = line.lstrip()[2:]
        if line.rstrip().endswith("\\"):
            pending.append(line.rstrip()[:-1])
            continue
        joined = " ".join([*pending, line]).strip()
        pending = []
        here = HEREDOC.search(joined)
        if here:
            heredoc_end = here.group(1)
        yield start, joined, True


def _shell_commands(text: str, path: str) -> Iterator[Shown]:
    for number, line, in_shell in _logical_lines(text):
        if not in_shell:
            continue
        for argv in _collectors_argvs(line):
            yield Shown(path, number, line, argv)


def _inline_commands(text: str, path: str) -> Iterator[Shown]:
    for number, line, in_shell in _logical_lines(text):
        if in_shell:
            continue
        for span in INLINE_CODE.findall(line.replace("\\|", "|")):
            span = span.strip()
            if span.startswith("collectors ") or span.startswith("$ collectors "):
                for argv in _collectors_argvs(span.removeprefix("$ ")):
                    yield Shown(path, number, span, argv)


def _tokens(line: str) -> list[str]:
    """A shell line's words; command substitutions become separate commands."""
    substituted = "$(" in line
    line = line.replace("$(", " ; ").replace("`", " ; ")
    try:
        words = shlex.split(line, comments=True)
    except ValueError:
        words = line.split()
    if substituted:
        words = [word[:-1] if word.endswith(")") and "(" not in word else word for word in words]
    return words


def _simple_commands(tokens: list[str]) -> Iterator[list[str]]:
    """Split at pipes and list operators; `| --option` is synopsis notation (an alternative), not a pipe."""
    current: list[str] = []
    skip_next = False
    for index, token in enumerate(tokens):
        if skip_next:
            skip_next = False
            continue
        if token in SEPARATORS:
            following = tokens[index + 1] if index + 1 < len(tokens) else ""
            if token == "|" and following.lstrip("[").startswith("-"):
                continue
            yield current
            current = []
        elif token in {")", "2>&1"}:
            continue
        elif re.fullmatch(r"\d?(>>?|<)", token):
            skip_next = True
        elif re.match(r"\d?(>>?|<)\S", token):
            continue
        else:
            current.append(token)
    yield current


def _is_collectors(token: str) -> bool:
    return token == "collectors" or token.endswith("/bin/collectors")


def _invocation(words: list[str]) -> list[str] | None:
    """The arguments after `collectors` when this simple command runs it, directly or in a container."""
    index = 0
    while index < len(words) and (re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[index]) or words[index] in WRAPPERS):
        index += 1
    words = words[index:]
    if not words:
        return None
    if _is_collectors(words[0]):
        return words[1:]
    if words[0] not in CONTAINER_TOOLS or (words[0] == "kubectl" and "--" not in words):
        return None
    start = (
        words.index("--") + 1
        if "--" in words
        else next((i + 1 for i, word in enumerate(words) if word in {"exec", "run"}), len(words))
    )
    for position in range(start, len(words)):
        after_option = position > start and words[position - 1].startswith("-") and "=" not in words[position - 1]
        if _is_collectors(words[position]) and not after_option:
            return words[position + 1 :]
    return None


def _alternatives(argv: list[str]) -> list[tuple[str, ...]]:
    """Synopsis notation expanded: brackets dropped, `a|b` into one command line per alternative."""
    cleaned: list[list[str]] = []
    for token in argv:
        token = token.strip("[]{}")
        token = token.removesuffix("...").removesuffix("…")
        if not token or token in {"...", "…"}:
            continue
        options = [part.strip("[]{}") for part in token.split("|")] if "|" in token else [token]
        cleaned.append([option for option in options if option] or [token])
    return [tuple(combination) for combination in itertools.islice(itertools.product(*cleaned), 64)]


def _collectors_argvs(line: str) -> Iterator[tuple[str, ...]]:
    for words in _simple_commands(_tokens(line)):
        argv = _invocation(words)
        if argv is not None:
            yield from _alternatives(argv)


def problem(argv: tuple[str, ...]) -> str | None:
    """Why `collectors` would refuse these arguments, or None when its parser accepts them.

    Only click's parsers run (no command is invoked, no value converted): an unknown subcommand, an unknown
    option, an option missing its value and positional arguments the command has no place for are refused.
    """
    command: click.Command = main
    context = click.Context(main, info_name="collectors", **main.context_settings)
    spoken = ["collectors"]
    rest = list(argv)
    while True:
        try:
            _options, leftover, _order = command.make_parser(context).parse_args(list(rest))
        except click.UsageError as error:
            return f"{error.format_message()} (see `{' '.join(spoken)} --help`)"
        if not isinstance(command, click.Group):
            if leftover and not command.allow_extra_args:
                return f"unexpected extra arguments: {' '.join(leftover)} (see `{' '.join(spoken)} --help`)"
            return None
        if not leftover or PLACEHOLDER.match(leftover[0]):
            return None
        name = leftover[0]
        sub = command.get_command(context, name)
        if sub is None:
            known = ", ".join(command.list_commands(context))
            return f"no command `{' '.join(spoken)} {name}` (there are: {known})"
        context = click.Context(sub, parent=context, info_name=name, **sub.context_settings)
        spoken.append(name)
        command, rest = sub, leftover[1:]
