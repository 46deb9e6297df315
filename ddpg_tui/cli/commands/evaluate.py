"""`ddpg-tui eval`: a checkpoint's actor, noise off, averaged over episodes."""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ddpg_tui.cli.commands import int_option
from ddpg_tui.request import EXIT_BAD_INPUT, EXIT_OK, UsageError

if TYPE_CHECKING:
    from agents.evaluation import CheckpointEvaluation

NAME = "eval"
HELP = "evaluate a checkpoint with noise off"
DESCRIPTION = ("Run the checkpoint's actor deterministically and report the mean return; with --record, "
               "also write the episodes as an animated GIF or MP4.")
EXAMPLES = """\
examples:
  ddpg-tui eval runs/pendulum-20261124-120000 --episodes 20
  ddpg-tui eval runs/pendulum-20261124-120000 --record pendulum.gif
  ddpg-tui eval runs/lunar-20261124-120000 --record lander.mp4 --episodes 3 --fps 25   (needs ddpg-tui[video])
"""
DEFAULT_RECORDED_EPISODES = 1  # an episode of LunarLander is up to 1,000 frames
MAX_RECORD_FPS = 50.0  # GIF delays are counted in hundredths of a second
SEED_HELP = ("env seed of the first episode; episode i uses S+i (default: the episodes of the in-run "
             "evaluation of the checkpoint's run, S = 2**32 + 1000 x its config's seed, so that the mean "
             "is the one its dashboard showed for that checkpoint)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", metavar="CHECKPOINT", help="a .pt file, or a run folder (its latest)")
    parser.add_argument("--episodes", type=int_option, metavar="N",
                        help="episodes (default: as many as the in-run evaluation of the checkpoint's run, its "
                        f"eval_episodes; {DEFAULT_RECORDED_EPISODES} with --record)")
    parser.add_argument("--seed", type=int_option, default=None, metavar="S", help=SEED_HELP)
    parser.add_argument("--env", metavar="ENV_ID",
                          help="evaluate on this env instead of the one the checkpoint names (same dims and "
                          "action bounds); needed when that id would import a module")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--record", type=Path, metavar="FILE",
                        help="write the episodes as an animation: FILE.gif, or FILE.mp4 with ddpg-tui[video]")
    parser.add_argument("--fps", type=float, metavar="F",
                        help=f"with --record: frames a second, at most the env's own (default: the env's, up to 30; "
                        f"at most {MAX_RECORD_FPS:g}); the animation plays in real time, keeping every k-th step")


def run(args: argparse.Namespace) -> int:
    if args.episodes is None and args.record:
        args.episodes = DEFAULT_RECORDED_EPISODES
    if args.episodes is not None and args.episodes < 1:
        raise UsageError(f"--episodes: {args.episodes} is not allowed; expected an integer >= 1")
    if args.fps is not None and args.record is None:
        raise UsageError("--fps is the frame rate of an animation; it needs --record FILE")
    if args.fps is not None and not (math.isfinite(args.fps) and 0 < args.fps <= MAX_RECORD_FPS):
        raise UsageError(f"--fps: {args.fps:g} is not allowed; expected a number > 0 and <= {MAX_RECORD_FPS:g}")
    from agents.checkpoint import CheckpointError
    from agents.envs import EnvError
    from ddpg_tui.media.render import RecordingError

    recorded: Recorded | None = None
    try:
        if args.record is not None:
            result, recorded = _evaluate_recording(args)
        else:
            from agents.evaluation import evaluate_checkpoint

            result = evaluate_checkpoint(args.checkpoint, args.episodes, args.seed, env_id=args.env)
    except (CheckpointError, EnvError, RecordingError) as error:
        print(f"ddpg-tui: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    evaluation = result.evaluation
    if args.json:
        print(json.dumps({
            "checkpoint": str(result.path), "run_dir": str(_run_dir_of(result.path)),
            "env_id": result.env_id, "step": result.step, "seed": result.seed,
            "episodes": len(evaluation.returns), "mean": evaluation.mean, "std": evaluation.std,
            "returns": list(evaluation.returns),
            **({"record": str(args.record), "frames": recorded.frames, "fps": recorded.fps}
               if recorded is not None else {}),
        }))
    else:
        count = len(evaluation.returns)
        print(f"{result.path}: {result.env_id} at step {result.step:,}: mean return {evaluation.mean:.1f} "
              f"± {evaluation.std:.1f} over {count} episode{'' if count == 1 else 's'} (noise off)")
        if recorded is not None:
            print(f"wrote {args.record}: {recorded.frames:,} frames, {recorded.size}, {recorded.fps:.3g} fps"
                  f"{recorded.note}")
    return EXIT_OK


@dataclass(frozen=True, slots=True)
class Recorded:
    frames: int
    size: str
    fps: float
    note: str  # how the frames relate to the steps, when it is not one to one


def _evaluate_recording(args: argparse.Namespace) -> tuple[CheckpointEvaluation, Recorded]:
    """Evaluate on an env that draws, sending every k-th frame to the animation file.

    The file's folder and format are checked first (the writer makes its temporary file at
    once), then the env draws one frame, so that nothing is evaluated for a file that cannot
    be written or an env that cannot draw.
    """
    from agents.evaluation import CheckpointEvaluation, evaluate, load_checkpoint_policy
    from ddpg_tui.media.animation import AnimationWriter, check_record_path
    from ddpg_tui.media.render import first_frame, frame_stride, make_render_env

    check_record_path(args.record)
    loaded = load_checkpoint_policy(args.checkpoint, args.env, make_render_env)
    seed = loaded.first_seed(args.seed)
    try:
        first_frame(loaded.env, loaded.env_id, seed)
        env_fps = float(loaded.env.metadata.get("render_fps") or 0.0)
        stride, fps = frame_stride(env_fps, args.fps or min(env_fps or 30.0, 30.0))
        writer = AnimationWriter(args.record, fps)
        try:
            evaluation = evaluate(loaded.policy, loaded.env, args.episodes, seed,
                                  frame_sink=lambda episode, step, frame: writer.add(frame), frame_every=stride)
            frames = writer.close()
        except BaseException:
            writer.abort()
            raise
    finally:
        loaded.env.close()
    size = f"{writer.size[0]}x{writer.size[1]}" if writer.size else "0x0"
    merged = writer.frames_added - frames
    note = "" if stride == 1 else f", every {_ordinal(stride)} step"
    if merged:
        note += f"; {merged:,} unchanged frames merged into their predecessors"
    result = CheckpointEvaluation(loaded.env_id, loaded.step, loaded.path, evaluation, seed)
    return result, Recorded(frames, size, fps, note)


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def _run_dir_of(checkpoint: Path) -> Path:
    return checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint.parent
