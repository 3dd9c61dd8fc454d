"""The source tree's layers: every import points down (data, core, Kafka and delivery, worker, services, tools)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Lower numbers sit lower; a module may import its own layer and any layer below it.
LAYERS = {
    "schemas": 0,
    "streams.core": 1,
    "streams.kafka": 2,
    "streams.delivery": 2,
    "streams.models": 2,
    "streams.worker": 3,
    "streams.services": 4,
    "streams.tools": 5,
}


def layer_of(module: str) -> int | None:
    matches = [prefix for prefix in LAYERS if module == prefix or module.startswith(prefix + ".")]
    return LAYERS[max(matches, key=len)] if matches else None


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted([*ROOT.joinpath("streams").rglob("*.py"), *ROOT.joinpath("schemas").rglob("*.py")]):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        found.append((module, path))
    return found


@pytest.mark.parametrize(("module", "path"), modules(), ids=[m for m, _ in modules()])
def test_imports_point_down(module: str, path: Path) -> None:
    own = layer_of(module)
    if own is None:
        return  # streams/__init__ and __main__ stand above every layer
    upward = sorted(name for name in imports_of(path) if (layer := layer_of(name)) is not None and layer > own)
    assert not upward, f"{module} (layer {own}) imports from a layer above it: {upward}"


def test_the_core_needs_no_faust() -> None:
    for module, path in modules():
        if layer_of(module) == LAYERS["streams.core"]:
            assert not {name for name in imports_of(path) if name.split(".")[0] in {"faust", "mode", "aiokafka"}}, (
                module
            )
