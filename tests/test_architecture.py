"""The layers, enforced: the learner (`agents`) knows nothing of the front-ends, the sweeps know nothing
of the UI, each layer of docs/architecture.md's flow line imports only those to its left, no two modules
of the project import each other, directly or through a cycle, and the page's tree names every module.

Imports are read with `ast`, so every import counts: module level, inside functions, and under
`if TYPE_CHECKING:` (a type-only import is still a dependency a reader has to follow).
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
AGENTS = ROOT / "agents"
PACKAGES = ("agents", "ddpg_tui", "presets")
AGENTS_FORBIDDEN = ("ddpg_tui", "textual", "rich", "ray", "PIL")
SWEEPS_FORBIDDEN = ("textual", "ddpg_tui.ui")
CHANNEL_FORBIDDEN = ("textual", "rich", "ddpg_tui.ui", "ddpg_tui.cli")


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, root: Path = ROOT) -> Iterator[str]:
    """Every module name `path` imports, relative imports resolved; `from a import b` yields a and a.b
    (b may be a module)."""
    module = module_name(path, root)
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package[:len(package) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def imported_modules(path: Path) -> set[str]:
    return set(imports_of(path))


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """module -> the project modules it imports (a package's __init__ stands for the package)."""
    files = {module_name(p, root): p for package in PACKAGES for p in sorted((root / package).rglob("*.py"))}

    def resolve(name: str) -> str | None:
        while name and name not in files:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        targets = {resolve(name) for name in imports_of(path, root)}
        graph[module] = {t for t in targets if t is not None and t != module}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None: a depth-first search that meets a module on its path."""
    done: set[str] = set()
    path: list[str] = []
    on_path: set[str] = set()

    def visit(module: str) -> list[str] | None:
        path.append(module)
        on_path.add(module)
        for target in sorted(graph.get(module, ())):
            if target in on_path:
                return [*path[path.index(target):], target]
            if target not in done and (cycle := visit(target)):
                return cycle
        path.pop()
        on_path.discard(module)
        done.add(module)
        return None

    for module in sorted(graph):
        if module not in done and (cycle := visit(module)):
            return cycle
    return None


def all_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle found by removing each found cycle's first edge and searching again (enough to report)."""
    graph = {k: set(v) for k, v in graph.items()}
    cycles = []
    while (cycle := find_cycle(graph)) is not None:
        cycles.append(cycle)
        graph[cycle[0]].discard(cycle[1])
    return cycles


@pytest.mark.parametrize("path", sorted(AGENTS.rglob("*.py")), ids=lambda p: p.name)
def test_the_learner_imports_no_front_end_ui_ray_or_pillow(path: Path) -> None:
    offending = sorted(name for name in imported_modules(path) if _within(name, AGENTS_FORBIDDEN))
    assert not offending, f"agents/{path.relative_to(AGENTS)} imports {offending}"


@pytest.mark.parametrize("path", sorted((ROOT / "ddpg_tui" / "sweeps").rglob("*.py")), ids=lambda p: p.name)
def test_the_sweeps_import_no_textual_and_no_screen(path: Path) -> None:
    offending = sorted(name for name in imported_modules(path) if _within(name, SWEEPS_FORBIDDEN))
    assert not offending, f"ddpg_tui/sweeps/{path.name} imports {offending}"


@pytest.mark.parametrize("path", sorted((ROOT / "ddpg_tui" / "channel").rglob("*.py")), ids=lambda p: p.name)
def test_the_channel_is_a_transport_that_imports_no_screen_and_no_command(path: Path) -> None:
    # Headless runs, the app's worker and attached clients all use it: it sits below both rooms.
    offending = sorted(name for name in imported_modules(path) if _within(name, CHANNEL_FORBIDDEN))
    assert not offending, f"ddpg_tui/channel/{path.name} imports {offending}"


def test_no_two_project_modules_import_each_other_even_through_a_cycle() -> None:
    cycles = all_cycles(import_graph())
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(cycle) for cycle in cycles)


CLI_ROOM = ("ddpg_tui.cli",)
UI_ROOM = ("ddpg_tui.ui",)


def test_the_ui_room_never_imports_the_cli_room() -> None:
    # One way only: a command may open the app or a screen; a screen never reaches back into a command
    # (what both need lives in ddpg_tui/request.py, ddpg_tui/sweeps/ or ddpg_tui/ui/run_text.py).
    graph = import_graph()
    offending = sorted(f"{module} -> {target}" for module, targets in graph.items() if _within(module, UI_ROOM)
                       for target in targets if _within(target, CLI_ROOM))
    assert not offending, offending


def test_the_cycle_check_sees_function_level_type_checking_and_relative_imports(tmp_path: Path) -> None:
    # The check itself must not be blind: a cycle through each kind of import is found.
    package = tmp_path / "agents"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("def f():\n    from agents import b\n")
    (package / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .c import X\n")
    (package / "c.py").write_text("from . import a\nX = 1\n")
    assert find_cycle(import_graph(tmp_path)) == ["agents.a", "agents.b", "agents.c", "agents.a"]


def test_cli_help_does_not_import_torch() -> None:
    # `ddpg-tui --help` must answer at once; torch alone takes 1.5 s to import.
    code = "import sys; from ddpg_tui.cli.main import build_parser; build_parser(); print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_bad_argument_errors_do_not_import_torch() -> None:
    code = ("import sys; from ddpg_tui.cli.main import main; "
            "code = main(['train', '--set', 'gamma=2', '--headless']); print(code, 'torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "2 False"


def test_nothing_imports_the_cli_so_it_sits_on_top() -> None:
    # The CLI room is the top of the house: outside ddpg_tui/cli/ nothing may import it (but `python -m ddpg_tui`,
    # which is the command itself).
    graph = import_graph()
    entry_points = (*CLI_ROOM, "ddpg_tui.__main__")
    offending = sorted(f"{module} -> {target}" for module, targets in graph.items() if not _within(module, entry_points)
                       for target in targets if _within(target, CLI_ROOM))
    assert not offending, offending


# docs/architecture.md's flow line, left to right: each layer imports only the layers to its left, besides
# its own package. `ddpg_tui` itself (its __init__, which holds __version__ alone) is the prefix of no layer.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("agents",),
    ("presets", "ddpg_tui.request", "ddpg_tui.stats"),
    ("ddpg_tui.sweeps", "ddpg_tui.media", "ddpg_tui.channel", "ddpg_tui.population", "ddpg_tui.export"),
    UI_ROOM,
    CLI_ROOM,
    ("ddpg_tui.__main__",),  # python -m ddpg_tui: the command itself
)
PACKAGE_ROOT = "ddpg_tui"


def layer_of(module: str) -> tuple[int, str] | None:
    """(the layer's index, the package within it) of a project module; None for one no layer names."""
    for index, packages in enumerate(LAYERS):
        for package in packages:
            if _within(module, (package,)):
                return index, package
    return None


def test_each_layer_imports_only_the_layers_to_its_left() -> None:
    graph = import_graph()
    unplaced = sorted(m for m in graph if m != PACKAGE_ROOT and layer_of(m) is None)
    assert not unplaced, f"no layer for {unplaced}: add it to LAYERS and to the flow line in docs/architecture.md"
    offending = []
    for module, targets in graph.items():
        here = layer_of(module)
        for target in targets - {PACKAGE_ROOT}:
            there = layer_of(target)
            if here and there and (there[0] > here[0] or (there[0] == here[0] and there[1] != here[1])):
                offending.append(f"{module} -> {target}")
    assert not offending, sorted(offending)


ARCHITECTURE = ROOT / "docs" / "architecture.md"
PY_NAME = re.compile(r"\b\w+\.py\b")


def architecture_tree(text: str) -> set[str]:
    """The paths docs/architecture.md's tree names: each entry's name column under its open folders, and the
    `x.py` a folder's own description lists (screens/, widgets/, commands/ name their modules that way).

    A line indented deeper than its folder's entries continues the description above it.
    """
    block = text.split("<!-- section: architecture -->", 1)[1].split("```", 2)[1]
    named: set[str] = set()
    folders: list[str] = []  # the open folders, outermost first
    describing = ""  # the folder whose description a continuation line goes on ("" for a file's)
    for line in block.splitlines():
        indent = len(line) - len(line.lstrip())
        if not line.strip():
            continue
        if indent > 2 * len(folders):
            named |= {describing + name for name in PY_NAME.findall(line)} if describing else set()
            continue
        del folders[indent // 2:]
        entry = re.match(r"((?:[\w.]+/?)(?:, [\w.]+/?)*)\s*(.*)", line.strip())
        assert entry, f"not a tree entry: {line!r}"
        names, description = entry.group(1).split(", "), entry.group(2)
        prefix = "".join(folders)
        if names[0].endswith("/"):
            folders.append(names[0])
            describing = prefix + names[0]
            named |= {describing + name for name in PY_NAME.findall(description)}
        else:
            describing = ""
            named |= {prefix + name for name in names}
    return named


def test_the_architecture_tree_names_every_module_and_no_other() -> None:
    # A module the page leaves out is one a reader never hears of; a name it keeps after a move sends them nowhere.
    # A package's __init__.py is its folder's entry.
    modules = {p.relative_to(ROOT).as_posix() for package in ("agents", "ddpg_tui")
               for p in (ROOT / package).rglob("*.py") if p.name != "__init__.py"}
    named = {n for n in architecture_tree(ARCHITECTURE.read_text(encoding="utf-8"))
             if n.endswith(".py") and n.startswith(("agents/", "ddpg_tui/"))}
    assert sorted(modules - named) == [], "not in docs/architecture.md's tree"
    assert sorted(named - modules) == [], "in docs/architecture.md's tree, but no such file"


def test_the_tree_reader_finds_files_under_their_folders() -> None:
    # The check itself must not be blind: entries, shared lines, continuations and a folder's listed modules.
    text = ("<!-- section: architecture -->\n```\nagents/   the learner\n  a.py, b.py  two\n  c.py      three,\n"
            "            like d.py (not a file of agents/)\n"
            "ddpg_tui/\n  ui/    e.py and\n         f.py\n    g.py  x\n```\n")
    assert architecture_tree(text) == {"agents/a.py", "agents/b.py", "agents/c.py", "ddpg_tui/ui/e.py",
                                       "ddpg_tui/ui/f.py", "ddpg_tui/ui/g.py"}
