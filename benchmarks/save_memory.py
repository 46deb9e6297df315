"""Peak extra memory while saving a full replay buffer, as a multiple of the buffer's size.

    python benchmarks/save_memory.py                 # a full 1M LunarLander buffer (8 obs, 2 actions)
    python benchmarks/save_memory.py --old           # also the save path as it was before streaming

Linux only: the peak is the process's VmHWM, reset just before the save through
/proc/self/clear_refs, minus its resident size at that moment.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import io
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

from agents.checkpoint import FORMAT, FORMAT_VERSION, atomic_write_bytes, save_checkpoint
from agents.replay_buffer import ReplayBuffer


def status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS


def full_buffer(capacity: int, obs_dim: int, act_dim: int) -> ReplayBuffer:
    buffer = ReplayBuffer(capacity, obs_dim, act_dim)
    rng = np.random.default_rng(0)
    for start in range(0, capacity, 50_000):  # in chunks, so filling leaves no large peak behind
        end = min(start + 50_000, capacity)
        for array in (buffer.obs, buffer.next_obs, buffer.actions, buffer.rewards, buffer.dones):
            array[start:end] = rng.standard_normal(array[start:end].shape, dtype=np.float32)
    buffer.size, buffer.position = capacity, 0
    return buffer


def old_save(path: Path, payload: dict) -> None:
    """The save path before 2026-11-26: a copy of the buffer, tobytes() for the checksum, a BytesIO, getvalue()."""
    state = payload["replay_buffer"]
    copied = {k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in state.items()}
    digest = hashlib.blake2b(digest_size=16)
    for value in copied.values():
        if isinstance(value, torch.Tensor):
            digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes())
    stream = io.BytesIO()
    torch.save({"format": FORMAT, "format_version": FORMAT_VERSION, "replay_buffer": copied,
                "checksum": digest.hexdigest()}, stream)
    atomic_write_bytes(path, stream.getvalue())


def measure(save, path: Path, buffer: ReplayBuffer) -> tuple[float, float]:
    payload = {"replay_buffer": buffer.state_dict(), "step": buffer.size, "save_id": "measure"}
    gc.collect()
    reset_peak()
    before = status_kib("VmRSS")
    started = time.perf_counter()
    save(path, payload)
    seconds = time.perf_counter() - started
    extra = (status_kib("VmHWM") - before) * 1024
    return extra / buffer.nbytes, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--capacity", type=int, default=1_000_000)
    parser.add_argument("--obs-dim", type=int, default=8)
    parser.add_argument("--act-dim", type=int, default=2)
    parser.add_argument("--old", action="store_true", help="also measure the old, copying save path")
    args = parser.parse_args()
    torch.set_num_threads(1)
    buffer = full_buffer(args.capacity, args.obs_dim, args.act_dim)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "replay_buffer.pt"
        ratio, seconds = measure(save_checkpoint, path, buffer)
        size = path.stat().st_size
        print(f"buffer {buffer.nbytes / 2**20:.1f} MiB ({args.capacity:,} transitions, obs {args.obs_dim}, "
              f"act {args.act_dim}); file {size / 2**20:.1f} MiB")
        print(f"save: extra peak memory {ratio:.2f}x the buffer, {seconds:.2f} s")
        if args.old:
            old_ratio, old_seconds = measure(old_save, path, buffer)
            print(f"old save path: extra peak memory {old_ratio:.2f}x the buffer, {old_seconds:.2f} s")


if __name__ == "__main__":
    main()
