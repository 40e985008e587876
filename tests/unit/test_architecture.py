"""Dependencies point inward: core knows no chat platform, no trainer, and no torch at import."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FORBIDDEN_IN_CORE = {"bot", "training", "slack_bolt", "slack_sdk", "discord", "typer", "rich"}


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_core_imports_no_edge_or_trainer_package() -> None:
    offenders = {
        str(path.relative_to(REPO)): sorted(imported_roots(path) & FORBIDDEN_IN_CORE)
        for path in (REPO / "core").rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_importing_core_does_not_load_torch() -> None:
    code = (
        "import sys; import core.service, core.triage, core.store, core.store.sqlite, "
        "core.store.mongo, core.backends.heads, core.backends.embedded; "
        "print('torch' in sys.modules, 'sentence_transformers' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["False", "False"]


def test_import_linter_contracts_hold() -> None:
    """The [tool.importlinter] contracts in pyproject.toml: layers bot -> training -> core
    and no cycles between sibling modules (the known ones are listed there)."""
    lint_imports = Path(sys.executable).parent / "lint-imports"
    out = subprocess.run(
        [str(lint_imports), "--no-cache", "--no-logo"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def _source_tree(dest: Path) -> None:
    """What a checkout holds (tracked and untracked-not-ignored files), copied to `dest`: the
    build's `build/` and `*.egg-info` stay out of the working tree, and stale ones stay out."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=False,
    )
    if listed.returncode != 0:  # not a git checkout (an unpacked sdist): copy it all
        skip = shutil.ignore_patterns(".git", ".venv*", "build", "*.egg-info", "__pycache__")
        shutil.copytree(REPO, dest, ignore=skip, dirs_exist_ok=True)
        return
    for name in listed.stdout.decode().split("\0"):
        source = REPO / name
        if name and source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)


def test_wheel_holds_no_test_code(tmp_path: Path) -> None:
    """The wheel ships core, bot and training; no tests, no benchmarks, no fakes."""
    src, out = tmp_path / "src", tmp_path / "wheel"
    _source_tree(src)
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
        + ["--no-index", "--quiet", "-w", str(out), str(src)],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    (wheel,) = out.glob("triage_bot-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert {"core", "bot", "training"} <= tops
    assert [n for n in names if n.startswith(("tests/", "benchmarks/"))] == []
    assert [n for n in names if Path(n).name.startswith(("fake", "test_", "conftest"))] == []
    assert {t for t in tops - {"core", "bot", "training"} if not t.endswith(".dist-info")} == set()
