"""The engine must stay usable without the UI: agents/ never imports ddpg_tui or textual."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

AGENTS = Path(__file__).resolve().parents[1] / "agents"
FORBIDDEN = ("ddpg_tui", "textual", "rich")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", sorted(AGENTS.glob("*.py")), ids=lambda p: p.name)
def test_engine_module_imports_no_ui(path: Path) -> None:
    offending = {name for name in imported_modules(path) if name.split(".")[0] in FORBIDDEN}
    assert not offending, f"{path.name} imports {offending}"


def test_cli_help_does_not_import_torch() -> None:
    # `ddpg-tui --help` must answer at once; torch alone takes 1.5 s to import.
    code = "import sys; from ddpg_tui.cli import build_parser; build_parser(); print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_bad_argument_errors_do_not_import_torch() -> None:
    code = ("import sys; from ddpg_tui.cli import main; "
            "code = main(['train', '--set', 'gamma=2', '--headless']); print(code, 'torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "2 False"


def test_nothing_imports_the_cli_so_it_sits_on_top() -> None:
    ui = AGENTS.parent / "ddpg_tui"
    for path in sorted(ui.rglob("*.py")):
        if path.name == "cli.py":
            continue
        assert "ddpg_tui.cli" not in imported_modules(path), f"{path.relative_to(ui.parent)} imports ddpg_tui.cli"
