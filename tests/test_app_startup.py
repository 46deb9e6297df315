"""The app's first screen comes up without torch: importing it alone took 1.5-2.5 s of a 2.5 s start-up."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# In a fresh interpreter, so that no other test has imported torch already.
PICKER_WITHOUT_TORCH = """
import asyncio, sys
from pathlib import Path
from ddpg_tui.ui.app import DDPGApp
from ddpg_tui.ui.screens.picker import PickerScreen

async def main():
    app = DDPGApp(runs_root=Path(sys.argv[1]))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, PickerScreen), app.screen
        rows = app.screen.query_one("#presets").row_count
    print(rows, sorted(name for name in ("torch", "gymnasium", "ddpg_tui.ui.session", "agents.trainer")
                       if name in sys.modules))

asyncio.run(main())
"""


def test_importing_the_app_and_composing_the_picker_does_not_import_torch(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-c", PICKER_WITHOUT_TORCH, str(tmp_path)], capture_output=True,
                            text=True, cwd=tmp_path, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    rows, loaded = result.stdout.strip().split(" ", 1)
    assert int(rows) >= 3  # the presets are listed
    assert loaded == "[]"  # none of the heavy modules, nor the modules that bring them in
