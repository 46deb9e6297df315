"""What periodic saves cost each preset: seconds per save at the end of a run, against its training time.

    python benchmarks/save_cost.py [--steps-per-second pendulum=600 ...]

For each preset, a trainer's replay buffer is filled to what the run holds at its last
periodic save (random transitions; the bytes are what matter), then `save_every` saves are
timed. Training time is total_steps over the preset's measured steps/s from docs/results.md
(1 torch thread); the share is the upper bound (every save as large as the last).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from agents.trainer import Trainer
from presets import list_presets, load_preset

MEASURED_STEPS_PER_SECOND = {"pendulum": 610, "mountain-car-continuous": 140, "lunar-lander-continuous": 85}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    for name in list_presets():
        preset = load_preset(name)
        config = preset.config.replace(threads=1, device="cpu")
        if not config.save_every:
            print(f"{name}: no periodic saves")
            continue
        with tempfile.TemporaryDirectory() as folder:
            trainer = Trainer(config, None, Path(folder) / "run")
            trainer.files.create(config)
            held = min(config.buffer_size, config.total_steps - config.total_steps % config.save_every)
            rng = np.random.default_rng(0)
            buffer = trainer.buffer
            for start in range(0, held, 50_000):
                end = min(start + 50_000, held)
                for array in (buffer.obs, buffer.next_obs, buffer.actions, buffer.rewards):
                    array[start:end] = rng.standard_normal(array[start:end].shape, dtype=np.float32)
            buffer.size, buffer.position = held, held % buffer.capacity
            times = []
            for _ in range(args.repeats):
                started = time.perf_counter()
                trainer._save("periodic")
                times.append(time.perf_counter() - started)
            per_save = min(times)
            saves = config.total_steps // config.save_every
            training = config.total_steps / MEASURED_STEPS_PER_SECOND[name]
            print(f"{name}: save_every {config.save_every:,}, {saves} saves; the last holds {held:,} transitions "
                  f"({buffer.nbytes * held / buffer.capacity / 2**20:.1f} MiB): {per_save:.3f} s each; "
                  f"{saves * per_save:.1f} s of ~{training:,.0f} s training = {100 * saves * per_save / training:.2f}%")
            trainer.env.close()
            trainer.eval_env.close()


if __name__ == "__main__":
    main()
