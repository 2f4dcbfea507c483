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


TEMPLATES = PACKAGE.parent / "worker_template"
WORKER_SIDE = PACKAGE / "worker"
# Files with no twin on the other side, and why.
WITHOUT_TWIN = {
    "worker_template/ratelimit.js": "the local Rate Limiting stand-in, not part of the Worker",
    "infra/worker/__init__.py": "the package",
    "infra/worker/render.py": "renders the templates: no decision of the Worker's",
    "infra/worker/errors.py": "the table of the Worker's own error codes (the Errors page and its "
    "test read it): no decision of the Worker's",
}
# Twins that live elsewhere than infra/worker/, and why.
TWIN_ELSEWHERE = {
    # The settings and the provider table (shared modules above every side) size and pack the
    # secret bindings, so the module stays on top, where the worker side may import it.
    "secret_bindings": "infra/secret_bindings.py",
}
_FENCE = re.compile(r"^// --- (\w[\w ]*) \((infra/[\w/]+\.py)\)", re.MULTILINE)


def _templates() -> list[Path]:
    return sorted(TEMPLATES.glob("*.js.j2"))


def test_template_sections_name_their_modules() -> None:
    """Each fenced section of the Worker's templates names a module that exists, and is closed by
    its own end fence, so a reader finds the Python from the JavaScript and back."""
    assert _templates(), "no templates"
    for path in _templates():
        template = path.read_text()
        sections = _FENCE.findall(template)
        assert sections, f"{path.name}: no fenced section names its module"
        for name, module in sections:
            assert (PACKAGE.parent / module).is_file(), module
            assert f"// --- End of {name.lower()}." in template, f"{path.name}: {name}"


@pytest.mark.parametrize("path", _templates(), ids=lambda path: path.name)
def test_each_template_opens_naming_its_python_twin(path: Path) -> None:
    """A template's first line names its Python twin: the module of the same name on the worker
    side (or where TWIN_ELSEWHERE says)."""
    concern = path.name.removesuffix(".js.j2")
    twin = TWIN_ELSEWHERE.get(concern, f"infra/worker/{concern}.py")
    first = _FENCE.match(path.read_text())
    assert first is not None, f"{path.name} does not open with a fence naming its module"
    assert first.group(2) == twin


def test_every_concern_has_a_twin_on_each_side() -> None:
    """Every template has its Python module and every worker-side module its template, but for
    the few WITHOUT_TWIN names."""
    root = PACKAGE.parent
    templates = {path.name.removesuffix(".js.j2") for path in _templates()}
    modules = {path.stem for path in WORKER_SIDE.glob("*.py")}
    others = {path.relative_to(root).as_posix() for path in TEMPLATES.iterdir()} - {
        f"worker_template/{name}.js.j2" for name in templates
    }
    lonely_templates = sorted(
        f"worker_template/{name}.js.j2"
        for name in templates
        if not (root / TWIN_ELSEWHERE.get(name, f"infra/worker/{name}.py")).is_file()
    )
    lonely_modules = sorted(f"infra/worker/{name}.py" for name in modules if name not in templates)
    unexplained = sorted((set(lonely_templates + lonely_modules) | others) - set(WITHOUT_TWIN))
    assert unexplained == []
    assert sorted(set(WITHOUT_TWIN) - set(lonely_modules) - others) == [], "stale exceptions"


# Twins whose names differ by more than snake_case and camelCase (methods by `Class.name`).
TWIN_NAMES = {
    "Isolate.__init__": "isolate",
    "Isolate.pool": "keyPool",
    "Isolate.handle": "fetch",
    "Isolate._handle": "handle",
    "route": "matchRoute",
    "query_keys": "queryValues",
    "policy_of_client": "policyOf",
    "per_model_quota": "perModelQuota429",
    "next_quota_day_ms": "nextQuotaDay",
    "error_document": "peekError",
    "redacted": "redact",
    "parse_client_tokens": "clientTokenSlots",
}
_JS_FUNCTION = re.compile(
    # Functions and classes at the top, a class's methods two spaces in.
    r"^(?:async )?function (\w+)|^class (\w+)|^  (?:async )?(\w+)\([^)]*\) \{",
    re.MULTILINE,
)


def _camel(name: str) -> str:
    first, *rest = name.lstrip("_").split("_")
    return first + "".join(part[:1].upper() + part[1:] for part in rest)


def _python_functions(path: Path) -> list[str]:
    """The module's functions, classes and methods in order, each as its JavaScript twin's name."""
    names: list[str] = []
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.append(TWIN_NAMES.get(node.name, _camel(node.name)))
        if isinstance(node, ast.ClassDef):
            for member in node.body:
                if isinstance(member, ast.FunctionDef):
                    qualified = f"{node.name}.{member.name}"
                    names.append(TWIN_NAMES.get(qualified, _camel(member.name)))
    return names


@pytest.mark.parametrize("path", _templates(), ids=lambda path: path.name)
def test_twins_have_their_functions_in_the_same_order(path: Path) -> None:
    """Open a concern's two files side by side: the functions that have a twin come in the same
    order on both sides."""
    concern = path.name.removesuffix(".js.j2")
    module = PACKAGE.parent / TWIN_ELSEWHERE.get(concern, f"infra/worker/{concern}.py")
    python = _python_functions(module)
    javascript = [
        next(name for name in match.groups() if name)
        for match in _JS_FUNCTION.finditer(path.read_text())
    ]
    in_python = [name for name in python if name in javascript]
    assert in_python == [name for name in javascript if name in python]
