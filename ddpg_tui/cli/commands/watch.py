"""`ddpg-tui watch`: a checkpoint's policy playing live in the terminal, noise off."""

from __future__ import annotations

import argparse
import math
import sys

from ddpg_tui.cli.commands import int_option, require_terminal
from ddpg_tui.request import EXIT_BAD_INPUT, EXIT_OK, UsageError

NAME = "watch"
HELP = "watch a checkpoint's policy play, live in the terminal"
DESCRIPTION = ("Play the trained policy (noise off) and show the env's frames, with the step and the return. "
               "Keys: space pauses, . steps one frame, n starts the next episode, q quits.")
EXAMPLES = """\
examples:
  ddpg-tui watch runs/pendulum-20261124-120000               its latest checkpoint, 5 episodes
  ddpg-tui watch runs/pendulum-20261124-120000/checkpoints/best.pt --episodes 2 --fps 10
"""
MAX_FPS = 20.0  # a terminal redraws comfortably at this rate (see ddpg_tui/ui/widgets/frames.py)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", metavar="CHECKPOINT_OR_RUN", help="a .pt file, or a run folder (its latest)")
    parser.add_argument("--episodes", type=int_option, default=5, metavar="N", help="episodes to play (default: 5)")
    parser.add_argument("--fps", type=float, default=MAX_FPS, metavar="F",
                        help=f"frames a second, at most {MAX_FPS:g} (default); the episode plays in real time, "
                        "showing every k-th step when the env runs faster than F")
    parser.add_argument("--seed", type=int_option, default=None, metavar="S",
                        help="env seed of the first episode; episode i uses S+i, as in 'ddpg-tui eval' (default: "
                        "the episodes of the in-run evaluation of the checkpoint's run, S = 2**32 + 1000 x its "
                        "config's seed)")
    parser.add_argument("--env", metavar="ENV_ID",
                        help="play on this env instead of the one the checkpoint names (same dims and "
                        "action bounds); needed when that id would import a module")


def check_fps(value: float, most: float) -> None:
    if not (math.isfinite(value) and 0 < value <= most):
        raise UsageError(f"--fps: {value:g} is not allowed; expected a number > 0 and <= {most:g}")


def run(args: argparse.Namespace) -> int:
    if args.episodes < 1:
        raise UsageError(f"--episodes: {args.episodes} is not allowed; expected an integer >= 1")
    check_fps(args.fps, MAX_FPS)
    from agents.checkpoint import CheckpointError
    from agents.envs import EnvError
    from agents.evaluation import load_checkpoint_policy
    from ddpg_tui.media.render import RecordingError, first_frame, make_render_env

    try:
        loaded = load_checkpoint_policy(args.checkpoint, args.env, make_render_env)
    except (CheckpointError, EnvError, RecordingError) as error:
        print(f"ddpg-tui: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        # Drawn once before the app starts, so that an env that cannot draw here (no OpenGL,
        # no pygame) is one line in the terminal rather than an error inside the app.
        first_frame(loaded.env, loaded.env_id, loaded.first_seed(args.seed))
    except RecordingError as error:
        loaded.env.close()
        print(f"ddpg-tui: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT

    try:  # after the checkpoint's own errors, which say more about what to fix
        require_terminal("'ddpg-tui eval --record FILE.gif' draws the episodes into a file instead")
    except UsageError:
        loaded.env.close()
        raise
    from ddpg_tui.ui.screens.watch import Player, WatchApp
    from ddpg_tui.ui.widgets.frames import detect_graphics

    detect_graphics()  # before the app: the terminal's answers arrive on stdin, which Textual then owns
    player = Player(loaded, args.episodes, loaded.first_seed(args.seed), args.fps)
    app = WatchApp(player, f"{loaded.env_id} · {loaded.path} (step {loaded.step:,})")
    try:
        app.run()
    finally:
        loaded.env.close()
    if player.returns:
        mean = sum(player.returns) / len(player.returns)
        print(f"{loaded.path}: {loaded.env_id}: watched {len(player.returns)} episode"
              f"{'s' if len(player.returns) != 1 else ''}, mean return {mean:.1f} (noise off)")
    return app.return_code or EXIT_OK
