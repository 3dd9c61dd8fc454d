"""``${NAME}`` and ``${NAME:-default}`` in the string values of a configuration document.

``${NAME}`` is replaced by the environment variable NAME and is an error when NAME is unset;
``${NAME:-default}`` falls back to ``default`` when NAME is unset or empty; ``$${`` stands for a literal
``${``. Only values are interpolated, never keys, and YAML comments are not read at all.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_REFERENCE = re.compile(r"\$(\$)?\{([^}]*)\}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class InterpolationError(ValueError):
    """A reference that cannot be replaced; the message names the variable and where it is used."""


def interpolate(value: Any, environ: Mapping[str, str], where: str = "") -> Any:
    """``value`` (a parsed document) with every string's references replaced; raise
    :class:`InterpolationError` listing every unset variable at once."""
    result, missing = interpolate_all(value, environ, where)
    if missing:
        raise InterpolationError("; ".join(missing))
    return result


def interpolate_all(value: Any, environ: Mapping[str, str], where: str = "") -> tuple[Any, list[str]]:
    """``value`` with what can be replaced replaced (the other references left as written), and the
    problems, each naming where."""
    missing: list[str] = []
    return _walk(value, environ, where, missing), missing


def _walk(value: Any, environ: Mapping[str, str], where: str, missing: list[str]) -> Any:
    if isinstance(value, str):
        return _substitute(value, environ, where or "(document)", missing)
    if isinstance(value, dict):
        return {k: _walk(v, environ, f"{where}.{k}" if where else str(k), missing) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, environ, f"{where}[{i}]", missing) for i, v in enumerate(value)]
    return value


def _substitute(text: str, environ: Mapping[str, str], where: str, missing: list[str]) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group(1):
            return "${" + match.group(2) + "}"
        name, has_default, default = match.group(2).partition(":-")
        if not _NAME.fullmatch(name):
            missing.append(f"{where}: ${{{match.group(2)}}} is not a reference (write ${{NAME}} or ${{NAME:-default}})")
            return match.group(0)
        found = environ.get(name)
        if has_default:
            return found or default
        if found is None:
            missing.append(f"{where}: environment variable {name} is not set (or write ${{{name}:-default}})")
            return match.group(0)
        return found

    return _REFERENCE.sub(replace, text)
