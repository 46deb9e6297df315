"""Media: frames of an env and what is made of them, kept out of the learner (`agents`).

- `render.py`: an env that renders without a display, its first frame, frames resized to a box;
- `replay.py`: an evaluation's recorded episode redrawn frame by frame in a helper process;
- `animation.py`: frames written to a GIF or MP4 (`eval --record`).

It imports `agents` (envs, events), Pillow and gymnasium, never textual.
"""
