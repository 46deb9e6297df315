#!/usr/bin/env bash
# Re-evaluate each seed's best.pt and latest.pt from a learning.py run on fresh episodes.
#
#   benchmarks/reevaluate.sh lunar-lander-continuous [EPISODES]
#
# The in-run evaluations are 10 episodes on fixed start states, and best.pt is the maximum of
# many of them, so its in-run figure is biased upwards. This evaluates on EPISODES (default
# 100) episodes seeded from 50000, which no in-run evaluation (seed + 10000 + i) uses, and
# writes benchmarks/results/<label>-reeval.txt.
set -euo pipefail
label=$1
episodes=${2:-100}
here=$(cd "$(dirname "$0")" && pwd)
out="$here/results/$label-reeval.txt"
{
  echo "$label: ddpg-tui eval CHECKPOINT --episodes $episodes --seed 50000 (noise off)"
  printf '%-6s %-7s %8s %9s %8s\n' seed file step mean std
  for run in "$here"/runs/"$label"-seed*; do
    seed=${run##*-seed}
    for file in best latest; do
      ddpg-tui eval "$run/checkpoints/$file.pt" --episodes "$episodes" --seed 50000 --json |
        python -c "import json,sys; r=json.load(sys.stdin); print(f\"{'$seed':<6} {'$file':<7} {r['step']:>8} {r['mean']:>9.1f} {r['std']:>8.1f}\")"
    done
  done
} | tee "$out"
