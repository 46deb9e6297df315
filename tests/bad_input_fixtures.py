"""Builds the files the bad-input commands of docs/what-happens-if.md refer to, in the current folder."""
import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from agents.checkpoint import content_digest, load_checkpoint, save_checkpoint
from agents.config import DDPGConfig
from agents.trainer import Trainer

config = DDPGConfig(total_steps=200, learning_starts=100, batch_size=32, hidden_sizes=(16, 16),
                    eval_every=0, eval_episodes=1, threads=1)
Trainer(config, None, Path("runs/finished-run")).run()
latest = Path("runs/finished-run/checkpoints/latest.pt")
data = latest.read_bytes()
Path("corrupt.pt").write_bytes(data[: len(data) // 2])
Path("notes.txt").write_text("todo: try a larger batch\n", encoding="utf-8")  # no checkpoint at all
payload = load_checkpoint(latest)
payload["env_id"] = "MountainCarContinuous-v0"
save_checkpoint(Path("other-env.pt"), payload)  # a valid file, only for another env
payload["env_id"] = "this:Pendulum-v1"  # making it would import the module `this`
save_checkpoint(Path("module-env.pt"), payload)
del payload["counters"]
save_checkpoint(Path("no-counters.pt"), payload)  # its checksum holds; a key is missing


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


torch.save({"format": "ddpg-tui-checkpoint", "format_version": 1, "x": Evil()}, "evil.pt")
Path("not-a-folder").write_text("a file, not a folder")
Path("runs/sweeps/existing-sweep").mkdir(parents=True)  # a sweep name already taken
tampered = load_checkpoint(latest)  # its format header included, its checksum popped
digest = content_digest(tampered)
tampered["agent"]["actor"]["net.0.weight"][0, 0] += 1.0  # a weight changed after the save
torch.save({**tampered, "checksum": digest}, "tampered.pt")  # a whole file whose checksum does not match
Path("runs/no-checkpoint").mkdir(parents=True)  # a run folder whose run never saved
Path("not-toml.toml").write_text("env_id = Pendulum-v1\n", encoding="utf-8")  # a preset file: the id is unquoted
Path("bad-field.toml").write_text('env_id = "Pendulum-v1"\n[hyperparameters]\ngamma = 1.5\n', encoding="utf-8")
Path("module-env.toml").write_text('env_id = "this:Pendulum-v1"\n', encoding="utf-8")  # would import `this`
# A run whose process was killed (kill -9): its control.json names a pid that has ended and a socket nobody serves.
dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
Path("runs/killed-run").mkdir(parents=True)
control = {"socket": "/nonexistent/run.sock", "pid": int(dead.stdout)}
Path("runs/killed-run/control.json").write_text(json.dumps(control))
