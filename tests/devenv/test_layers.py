"""devenv's packages form straight layers (ARCHITECTURE.md): a module imports only from its own package
or the layers below it, and modules import no cycle. devenv runs from its wheel alone: it imports nothing
from the CDK app's `stack` package, and ships the stack's names, which the stack reads from it.

Imports inside functions count too: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import devenv
import stack.names
from devenv import stack_names

ROOT = Path(devenv.__file__).parent
STACK_NAMES = ROOT.parent / "stack" / "names.py"
# Top to bottom; packages on one line may not import each other.
LAYERS = [
    {"cli"},
    {"loadtest", "failover", "dashboard"},
    {"targets"},
    {"realize"},
    {"emulator"},
    {"services"},
    {"runtime"},
    {"config"},
    {"errors", "stack_names"},
]
RANK = {package: rank for rank, layer in enumerate(LAYERS) for package in layer}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The modules `path` imports; `from package import module` names the module, and imports under
    `if TYPE_CHECKING:` are left out (they never run)."""
    tree = ast.parse(path.read_text())
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for stmt in node.body
        for inner in ast.walk(stmt)
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in modules else node.module)
    return found


def all_imports() -> dict[str, set[str]]:
    """Each devenv module -> every module it imports, ours or not."""
    modules = {module_name(p): p for p in ROOT.rglob("*.py")}
    return {name: imports_of(path, set(modules)) for name, path in modules.items()}


def graph() -> dict[str, set[str]]:
    """Each devenv module -> the devenv modules it imports."""
    modules = {module_name(p): p for p in ROOT.rglob("*.py")}
    return {
        name: {t for t in imports_of(path, set(modules)) if t in modules and t != name}
        for name, path in modules.items()
    }


def package_of(module: str) -> str:
    return module.split(".")[1] if module.count(".") >= 1 else ""


def test_every_package_has_a_layer() -> None:
    packages = {package_of(m) for m in graph()} - {"", "__main__"}
    assert packages <= set(RANK), f"add {sorted(packages - set(RANK))} to LAYERS (and ARCHITECTURE.md)"


def test_imports_go_down_the_layers() -> None:
    wrong = [
        f"{a} -> {b}"
        for a, targets in graph().items()
        for b in targets
        if package_of(a) in RANK
        and package_of(b) in RANK
        and package_of(a) != package_of(b)
        and RANK[package_of(b)] <= RANK[package_of(a)]
    ]
    assert wrong == []


def test_no_module_import_cycle() -> None:
    try:
        graphlib.TopologicalSorter(graph()).prepare()
    except graphlib.CycleError as exc:
        raise AssertionError(f"import cycle: {' -> '.join(exc.args[1])}") from None


def test_no_module_imports_the_cdk_apps_package() -> None:
    """The wheel ships devenv and llmproxy only: the CDK app is found by the stack_dir setting."""
    wrong = sorted(
        f"{module} -> {target}"
        for module, targets in all_imports().items()
        for target in targets
        if target == "stack" or target.startswith("stack.")
    )
    assert wrong == []


def test_the_import_check_sees_an_import_of_the_stack(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from stack.names import SECRETS\n    import stack.app\n")
    assert {"stack.names", "stack.app"} <= imports_of(module, set())


def test_the_stack_reads_devenvs_names_and_keeps_no_copy() -> None:
    """devenv/stack_names.py is the one source: stack/names.py re-exports it and assigns no name."""
    tree = ast.parse(STACK_NAMES.read_text())
    assigned = [node for node in ast.walk(tree) if isinstance(node, (ast.Assign, ast.AnnAssign))]
    assert assigned == [], "stack/names.py defines names again; define them in devenv/stack_names.py"
    public = {name for name in vars(stack_names) if name.isupper()}
    assert public and all(getattr(stack.names, name) is getattr(stack_names, name) for name in public)
