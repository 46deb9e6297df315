"""ddpg-tui: the Textual app and the `ddpg-tui` command around the `agents` engine.

Two rooms, and what they share (docs/architecture.md draws them; tests/test_architecture.py enforces them):
- the CLI room, `cli/`: `main.py` (argparse), `commands/` (one module per subcommand), `headless.py` (the rich
  progress bar), `detach.py`, `population_run.py`, and `serve_access.py` / `served_app.py` for `serve`;
- the UI room, `ui/`: `app.py` and `app.tcss`, `screens/`, `widgets/`, the sessions (`session.py`,
  `remote_session.py`, `population_session.py`), `lifecycle.py` (how a process ends), `run_text.py` (how a run
  reads in a table) and `served.py`;
- beside both: `request.py` (TrainingRequest, exit codes, UsageError, closing lines), `population.py`,
  `export.py`, `stats.py`, `sweeps/` (Ray Tune, the run index), `media/` (render, replay, GIF/MP4) and
  `channel/` (a live run's control channel).
A command may open the app or a screen, and headless ones use `ui/lifecycle.py` and `ui/run_text.py` so that
every front-end ends and prints alike; nothing outside `cli/` imports the CLI room.
"""

__version__ = "0.1.0"
