"""`python -m ddpg_tui` is the `ddpg-tui` command (what the tests and benchmarks run in a fresh process)."""

from ddpg_tui.cli.main import main

raise SystemExit(main())
