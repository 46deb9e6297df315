"""ddpg-tui: the Textual app and the `ddpg-tui` command around the `agents` engine.

Two rooms, and what they share (docs/architecture.md draws them; tests/test_architecture.py enforces them):
- the CLI room: `cli.py` (argparse), `commands/` (one module per subcommand), `headless.py` (the rich
  progress bar) and `request.py` (exit codes, UsageError, closing lines);
- the UI room: `app.py`, `screens/`, `widgets/`, `session.py`, `app.tcss`;
- beside both: `sweeps/` (Ray Tune, the run index), `media/` (render, replay, GIF/MP4), `run_text.py`, `lifecycle.py`.
A command may open the app or a screen; the UI never imports the CLI room except `request.py`.
"""

__version__ = "0.1.0"
