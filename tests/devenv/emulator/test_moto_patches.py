"""moto's internals behind one seam: each patch's original is as the table records it for the pinned moto,
install applies every patch once, a changed moto is refused by name, and nothing else assigns to moto."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from devenv.emulator import moto_patches
from devenv.emulator.moto_patches import PATCHES, MotoMismatch, Patch

EMULATOR = Path(moto_patches.__file__).parent


@pytest.mark.parametrize("patch", PATCHES, ids=[p.target.removeprefix("moto.") for p in PATCHES])
def test_the_original_has_the_shape_the_patch_relies_on(patch: Patch) -> None:
    assert moto_patches.mismatch(patch) is None


def test_the_table_patches_each_attribute_once_and_says_why() -> None:
    targets = [p.target for p in PATCHES]
    assert len(targets) == len(set(targets))
    assert all(p.target.startswith("moto.") and p.why.strip() for p in PATCHES)


def test_install_puts_every_replacement_in_place_once() -> None:
    moto_patches.install()
    owners = [moto_patches.locate(p.target) for p in PATCHES]
    first = [getattr(owner, name) for owner, name in owners]
    moto_patches.install()  # a second call wraps nothing again
    assert [getattr(owner, name) for owner, name in owners] == first
    assert [p.target for p in PATCHES if not moto_patches.installed(p)] == []


def test_the_server_routes_by_a_module_list_read_once() -> None:
    import moto.backends

    moto_patches.install()
    listed = moto.backends.list_of_moto_modules()
    assert {"cloudformation", "ecs", "elbv2"} <= set(listed)
    assert moto.backends.list_of_moto_modules() is listed


def test_changed_parameters_are_named_with_the_moto_version(monkeypatch: pytest.MonkeyPatch) -> None:
    put = next(p for p in PATCHES if p.target.endswith("CloudWatchBackend.put_metric_data"))
    changed = dataclasses.replace(put, parameters=("self", "namespace"))
    monkeypatch.setattr(moto_patches, "PATCHES", (changed,))
    with pytest.raises(MotoMismatch) as raised:
        moto_patches.check()
    message = str(raised.value)
    assert put.target in message and put.why in message
    assert f"moto {moto_patches.moto_version()}" in message
    assert "('self', 'namespace', 'metric_data')" in message


@pytest.mark.parametrize(
    ("target", "parameters", "needs", "reason"),
    [
        ("moto.cloudwatch.models.CloudWatchBackend.no_such_method", ("self",), (), "no longer has it"),
        ("moto.cloudwatch.models.NoSuchClass.method", ("self",), (), "has no NoSuchClass"),
        ("moto.no_such_service.models.Backend.method", ("self",), (), "has no no_such_service"),
        ("moto.cloudwatch.models.CloudWatchBackend.put_metric_data", None, (), "now has its own"),
        (
            "moto.cloudformation.parsing.clean_json",
            ("resource_json", "resources_map"),
            ("__wrapped__",),
            "no longer has __wrapped__",
        ),
    ],
)
def test_a_moto_that_moved_on_is_described(
    target: str, parameters: tuple[str, ...] | None, needs: tuple[str, ...], reason: str
) -> None:
    patch = Patch(target, "a reason", moto_patches.replace(None), parameters, needs)
    found = moto_patches.mismatch(patch)
    assert found is not None and reason in found


def _moto_names(tree: ast.Module) -> set[str]:
    """The local names bound to moto's modules or objects by the module's imports."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "moto":
            names.update(alias.asname or alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(
                alias.asname or alias.name.split(".")[0]
                for alias in node.names
                if alias.name.split(".")[0] == "moto"
            )
    return names


def _root(node: ast.expr) -> str | None:
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _assigns_to_moto(tree: ast.Module, moto_names: set[str]) -> list[str]:
    """`Moto.attr = ...`, `module.Moto.attr = ...` and `setattr(Moto, ...)` on names imported from moto."""
    found: list[str] = []
    for node in ast.walk(tree):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = [t for t in node.targets if isinstance(t, ast.Attribute)]
        elif isinstance(node, ast.AnnAssign | ast.AugAssign) and isinstance(node.target, ast.Attribute):
            targets = [node.target]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "setattr":
            targets = node.args[:1]
        line = getattr(node, "lineno", 0)  # every node with targets is a statement or call: it has one
        found.extend(f"line {line}: {ast.unparse(node)}" for t in targets if _root(t) in moto_names)
    return found


def test_no_other_emulator_module_assigns_to_moto_objects() -> None:
    offenders = {}
    for path in sorted(EMULATOR.rglob("*.py")):
        if path.name == "moto_patches.py":
            continue
        tree = ast.parse(path.read_text())
        found = _assigns_to_moto(tree, _moto_names(tree))
        if found:
            offenders[str(path.relative_to(EMULATOR))] = found
    assert offenders == {}


def test_the_scan_sees_a_patch_outside_the_seam() -> None:
    tree = ast.parse(
        "from moto.ecs.models import EC2ContainerServiceBackend as B\n"
        "import moto\n"
        "B.list_tasks = f\n"
        "setattr(B, 'stop_task', g)\n"
        "from moto.cloudformation import models as cfn_models\n"
        "moto.x = 1\n"
        "cfn_models.Stack.delete = h\n"
        "local.attr = 2\n"
        "setattr(local, 'attr', 3)\n"
    )
    assert len(_assigns_to_moto(tree, _moto_names(tree))) == 4
