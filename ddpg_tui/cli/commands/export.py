"""`ddpg-tui export`: a checkpoint's actor as a standalone ONNX file."""

from __future__ import annotations

import argparse
from pathlib import Path

from ddpg_tui.request import EXIT_OK

NAME = "export"
HELP = "write a checkpoint's policy as an ONNX file"
DESCRIPTION = ("Write the checkpoint's actor alone as ONNX: input the raw observation (any batch size), output "
               "the action in the env's units, as 'eval' plays it (noise off). The file's metadata names the env, "
               "its shapes and bounds, the ddpg-tui version, the checkpoint's step and its eval return. "
               "Needs the export extra: pip install 'ddpg-tui[export]'.")
EXAMPLES = """\
examples:
  ddpg-tui export runs/pendulum-20261124-120000                 writes runs/pendulum-20261124-120000/policy.onnx
  ddpg-tui export runs/pendulum-20261124-120000/checkpoints/best.pt -o pendulum.onnx
  (running it: docs/onnx.md)
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", metavar="RUN_OR_CHECKPOINT", type=Path,
                        help="a .pt file, or a run folder (its latest)")
    parser.add_argument("-o", "--output", type=Path, metavar="FILE",
                        help="the file to write (default: policy.onnx in the run folder, or the .pt's name as .onnx)")
    parser.add_argument("--format", choices=("onnx",), default="onnx", help="the file format (default: onnx)")
    parser.add_argument("--env", metavar="ENV_ID",
                        help="check against this env instead of the one the checkpoint names (same dims and "
                        "action bounds); needed when that id would import a module")


def run(args: argparse.Namespace) -> int:
    from ddpg_tui.export import export_onnx

    exported = export_onnx(args.checkpoint, args.output, env_id=args.env)
    meta = exported.metadata
    evaluation = (f", eval return {float(meta['eval_mean_return']):.1f} at step {int(meta['eval_step']):,}"
                  if "eval_mean_return" in meta else "")
    print(f"wrote {exported.path}: the policy of {exported.env_id} at step {exported.step:,}{evaluation}; "
          f"input 'observation' [batch, {meta['obs_dim']}], output 'action' [batch, {meta['act_dim']}]")
    return EXIT_OK
