"""Population training against the same seeds run one after another, side by side in one run.

    python benchmarks/population.py                 # pendulum N=8 and lunar N=4, whole training
    python benchmarks/population.py --micro         # the update alone: baddbmm vs torch.func vmap vs a loop
    python benchmarks/population.py --steps 300     # a smoke run

Whole training: `PopulationTrainer(config, seeds).run()` against `Trainer(config with seed k).run()`
for each seed in turn, one torch thread each, the preset's config with a short run (learning_starts
500, then --steps steps, evaluation at the end with the preset's episodes, no run folder). The
figure is member env-steps per second: N * total_steps / wall seconds of run() (construction
excluded on both sides); each row also splits that time into updates, replay sampling,
evaluation and the rest (env steps, action selection, storing transitions). Each contender
runs in a fresh subprocess so that neither inherits the other's allocator or caches, and the
rounds alternate (population, standalone, ...) so that drift on a shared machine spreads over
both. Every measurement is appended to benchmarks/results/population.jsonl as it finishes.

--micro times only the update of N members on a preallocated batch (batch 256, DDPG), three ways:
stacked weights with torch.baddbmm (agents/population_agent.py), torch.func.stack_module_state +
functional_call + vmap, and N DDPGAgent.update calls in a loop.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results" / "population.jsonl"
CASES = (("pendulum", 8), ("lunar-lander-continuous", 4))
LEARNING_STARTS = 500


def bench_config(preset: str, steps: int) -> Any:
    from presets import load_preset

    return load_preset(preset).config.replace(learning_starts=LEARNING_STARTS, total_steps=LEARNING_STARTS + steps,
                                              eval_every=0, save_every=0, threads=1, device="cpu")


# Workers: each runs in a fresh process and prints one JSON line ----------------------------


def worker(kind: str, preset: str, members: int, steps: int) -> dict[str, Any]:
    import torch

    from agents.population import PopulationTrainer
    from agents.trainer import Trainer

    torch.set_num_threads(1)
    config = bench_config(preset, steps)
    seeds = list(range(members))
    phases = {"update": 0.0, "sample": 0.0, "evaluate": 0.0}
    wall = 0.0
    trainers: list[Any] = ([PopulationTrainer(config, seeds, threads=1)] if kind == "population" else
                           [Trainer(config.replace(seed=seed), front_end="headless") for seed in seeds])
    for trainer in trainers:  # built before the clock starts, alike for both
        timed(trainer.agent, "update", phases)
        timed(trainer.pool if kind == "population" else trainer.buffer, "sample", phases)
        timed(trainer, "_evaluate", phases, "evaluate")
    for trainer in trainers:
        start = time.perf_counter()
        trainer.run()
        wall += time.perf_counter() - start
    rest = wall - sum(phases.values())
    return {"kind": kind, "preset": preset, "members": members, "steps": config.total_steps, "wall_s": round(wall, 2),
            "member_steps_per_s": round(members * config.total_steps / wall, 1),
            "seconds": {**{name: round(value, 2) for name, value in phases.items()},
                        "env_and_actions": round(rest, 2)}}


def timed(owner: Any, name: str, totals: dict[str, float], phase: str | None = None) -> None:
    """Wrap owner.name so that its wall time adds up in totals[phase] (one perf_counter pair a call)."""
    method = getattr(owner, name)

    def wrapper(*args: Any) -> Any:
        start = time.perf_counter()
        try:
            return method(*args)
        finally:
            totals[phase or name] += time.perf_counter() - start

    setattr(owner, name, wrapper)


def micro(hidden: int, members: int, seconds: float) -> dict[str, float]:
    """Member-updates per second of the three ways of updating N members."""
    import torch
    from torch.func import functional_call, stack_module_state

    from agents.config import DDPGConfig
    from agents.ddpg import DDPGAgent, make_adam
    from agents.envs import env_spec, make_env
    from agents.population_agent import PopulationAgent
    from agents.replay_buffer import Batch

    torch.set_num_threads(1)
    config = DDPGConfig(hidden_sizes=(hidden, hidden), device="cpu", batch_size=256)
    spec = env_spec(make_env("Pendulum-v1"), "Pendulum-v1")
    agents = []
    for seed in range(members):
        torch.manual_seed(seed)
        agents.append(DDPGAgent(spec, config.replace(seed=seed), torch.device("cpu")))
    b = config.batch_size

    def batch(*lead: int) -> Batch:
        return Batch(torch.randn(*lead, b, spec.obs_dim), torch.rand(*lead, b, 1) * 4 - 2, torch.randn(*lead, b),
                     torch.randn(*lead, b, spec.obs_dim), torch.zeros(*lead, b))

    def rate(step: Any) -> float:
        for _ in range(5):
            step()
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            step()
            n += 1
        return members * n / (time.perf_counter() - start)

    stacked, stacked_batch = PopulationAgent(agents), batch(members)
    loop_batch = batch()

    def loop() -> None:
        for agent in agents:
            agent.update(loop_batch)

    # torch.func: the same DDPG update, each module's forward vmapped over stacked parameters.
    def vmapped(modules: list[torch.nn.Module]) -> tuple[dict[str, torch.Tensor], Any]:
        params, buffers = stack_module_state(modules)  # type: ignore[arg-type]
        base = modules[0]

        def call(p: dict[str, torch.Tensor], bufs: dict[str, torch.Tensor], *x: torch.Tensor) -> torch.Tensor:
            return functional_call(base, (p, bufs), x)

        return params, lambda p, *x: torch.vmap(call)(p, buffers, *x)

    actor_p, actor = vmapped([a.actor for a in agents])
    critic_p, critic = vmapped([a.critic for a in agents])
    actor_tp, actor_t = vmapped([a.actor_target for a in agents])
    critic_tp, critic_t = vmapped([a.critic_target for a in agents])
    actor_opt = make_adam(list(actor_p.values()), 1e-3)
    critic_opt = make_adam(list(critic_p.values()), 1e-3)
    targets = [t.requires_grad_(False) for t in [*critic_tp.values(), *actor_tp.values()]]
    online = [*critic_p.values(), *actor_p.values()]

    def func_update() -> None:
        x = stacked_batch
        with torch.no_grad():
            y = x.rewards + 0.99 * (1 - x.dones) * critic_t(critic_tp, x.next_obs, actor_t(actor_tp, x.next_obs))
        loss = ((critic(critic_p, x.obs, x.actions) - y) ** 2).mean(dim=1).sum()
        critic_opt.zero_grad(set_to_none=True)
        loss.backward()
        critic_opt.step()
        actor_loss = -critic(critic_p, x.obs, actor(actor_p, x.obs)).mean(dim=1).sum()
        actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward(inputs=list(actor_p.values()))
        actor_opt.step()
        torch._foreach_lerp_(targets, online, 0.005)

    return {"baddbmm": rate(lambda: stacked.update(stacked_batch)), "vmap": rate(func_update), "loop": rate(loop)}


# Driver -----------------------------------------------------------------------------------


def append(row: dict[str, Any]) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a", encoding="utf-8") as results:
        results.write(json.dumps(row) + "\n")


def spawn(*args: str) -> dict[str, Any]:
    result = subprocess.run([sys.executable, __file__, "--worker", *args], capture_output=True, text=True,
                            check=True, cwd=ROOT)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3000, help="steps after learning_starts (default 3000)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--micro", action="store_true")
    parser.add_argument("--only", choices=[preset for preset, _ in CASES], help="one case only")
    parser.add_argument("--note", default="", help="recorded with every row, e.g. 'shared machine, 4 engineers'")
    parser.add_argument("--worker", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        if args.worker[0] == "micro":
            print(json.dumps(micro(int(args.worker[1]), int(args.worker[2]), float(args.worker[3]))))
        else:
            kind, preset, members, steps = args.worker
            print(json.dumps(worker(kind, preset, int(members), int(steps))))
        return
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    if args.micro:
        for hidden in (64, 256):
            for members in (1, 8):
                row = {"bench": "micro", "hidden": hidden, "members": members, "threads": 1, "time": stamp,
                       "note": args.note, **spawn("micro", str(hidden), str(members), "3")}
                append(row)
                print(json.dumps(row), flush=True)
        return
    for _ in range(args.rounds):
        for preset, members in CASES:
            if args.only and preset != args.only:
                continue
            for kind in ("population", "standalone"):
                row = {"bench": "whole", "threads": 1, "time": stamp, "note": args.note,
                       **spawn(kind, preset, str(members), str(args.steps))}
                append(row)
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
