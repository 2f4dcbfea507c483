"""The package's layout keeps its sides apart: no import circle, and no side reaching upwards."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "infra"

# Which sub-packages each side may import; shared modules on top import no side at all.
ALLOWED_SIDES: dict[str, set[str]] = {
    "": set(),
    "worker": {"worker"},
    "resources": {"resources", "worker"},
    "cli": {"cli", "worker"},
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """Each infra module's imports of other infra modules (from module or from package import)."""
    modules = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("infra"):
                for alias in node.names:
                    submodule = f"{node.module}.{alias.name}"
                    targets.add(submodule if submodule in modules else node.module)
            elif isinstance(node, ast.Import):
                targets.update(a.name for a in node.names if a.name.startswith("infra."))
        graph[name] = targets - {name}
    return graph


def _side(module: str) -> str:
    parts = module.split(".")
    return (
        parts[1]
        if len(parts) > 2 or module in {"infra.cli", "infra.worker", "infra.resources"}
        else ""
    )


def test_no_module_imports_itself_through_a_circle() -> None:
    """Following imports from any infra module never leads back to it."""
    graph = _imports()

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for target in graph.get(start, set()):
            if target == goal or (target not in seen and reaches(target, goal, seen | {target})):
                return True
        return False

    circles = sorted(module for module in graph if reaches(module, module, {module}))
    assert circles == []


@pytest.mark.parametrize("module", sorted(_imports()))
def test_each_side_imports_only_what_it_may(module: str) -> None:
    """The Worker side is pure, the Pulumi side and the command side never import each other."""
    side = _side(module)
    reached = {_side(target) for target in _imports()[module]} - {""}
    assert reached <= ALLOWED_SIDES[side], f"{module} imports {sorted(reached)}"


def test_template_sections_name_their_modules() -> None:
    """Each fenced section of the Worker template that names a module names one that exists, and
    is closed by its own end fence, so a reader finds the Python from the JavaScript and back."""
    template = (PACKAGE.parent / "worker_template" / "worker.js.j2").read_text()
    sections = re.findall(r"^// --- (\w[\w ]*) \((infra/[\w/]+\.py)\)", template, re.MULTILINE)
    assert sections, "no fenced section names its module"
    for name, module in sections:
        assert (PACKAGE.parent / module).is_file(), module
        assert f"// --- End of {name.lower()}." in template, name
