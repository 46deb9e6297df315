"""Sweeps: many runs of the same `agents.Trainer`, scheduled by Ray Tune, and the index of finished runs.

This package sits between the learner and the front-ends: it imports `agents` (and Ray, only when
a sweep runs), never textual, the app, its screens or its widgets (tests/test_architecture.py).
The rooms are listed in `spec.py`'s docstring.
"""
