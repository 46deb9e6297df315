"""What the --address check costs: joining a two-node local cluster and checking each node, with and without the code.

    python benchmarks/cluster_check.py [--rounds 3]

Starts two local nodes (`ray.cluster_utils.Cluster`, 1 CPU each), then, for each round, a fresh driver process
that joins them (`ray.init(address=…)`) without a runtime_env and one with the project's `py_modules` (what
`ddpg-tui sweep --address` passes), and times `check_nodes`: one task pinned to each node. With the code, the
time includes uploading it and unpacking it on each node; Ray keeps the upload by its hash, so later jobs of
the same code only unpack it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

DRIVER = """
import logging, sys, time
from pathlib import Path
started = time.monotonic()
import ray
from ddpg_tui.sweeps.cluster import check_nodes, project_runtime_env
extra = {"runtime_env": project_runtime_env()} if sys.argv[2] == "with" else {}
ray.init(address=sys.argv[1], log_to_driver=False, logging_level=logging.ERROR, **extra)
joined = time.monotonic()
count = check_nodes(Path(sys.argv[3]))
checked = time.monotonic() - joined
print(f"{sys.argv[2]:>7} the code: join {joined - started:4.1f} s, check of {count} nodes {checked:4.1f} s")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from ray.cluster_utils import Cluster

    nodes = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    nodes.add_node(num_cpus=1)
    nodes.wait_for_nodes()
    root = Path(__file__).resolve().parent.parent
    try:
        with tempfile.TemporaryDirectory() as folder:
            for _ in range(args.rounds):
                for mode in ("without", "with"):
                    result = subprocess.run([sys.executable, "-c", DRIVER, nodes.address, mode, folder], cwd=root,
                                            capture_output=True, text=True, timeout=300)
                    print(result.stdout.strip() or result.stderr.strip().splitlines()[-1], flush=True)
    finally:
        nodes.shutdown()


if __name__ == "__main__":
    main()
