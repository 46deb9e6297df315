"""Writing an evaluation's frames to a GIF (Pillow) or an MP4 (imageio-ffmpeg, the `video` extra)."""

from __future__ import annotations

import contextlib
import itertools
import os
import secrets
from pathlib import Path
from typing import Any

import numpy as np

from ddpg_tui.media.render import RecordingError, resize

RECORD_FORMATS = (".gif", ".mp4")


def check_record_path(path: Path) -> str:
    """The format for `path` (".gif" or ".mp4"), or RecordingError naming what is wrong.
    Checked before anything is evaluated, so a typo costs nothing."""
    suffix = path.suffix.lower()
    if suffix not in RECORD_FORMATS:
        shown = f"'{path.suffix}'" if path.suffix else "none"
        raise RecordingError(f"--record {path}: unknown format {shown}; expected a .gif or .mp4 file")
    if suffix == ".mp4" and not _has_mp4_encoder():
        raise RecordingError(f"--record {path} needs an MP4 encoder: pip install 'ddpg-tui[video]' "
                             "(or write a .gif)")
    if path.is_dir():
        raise RecordingError(f"--record {path} is a folder; give a file name ending in {suffix}")
    return suffix


def _has_mp4_encoder() -> bool:
    import importlib.util

    return importlib.util.find_spec("imageio_ffmpeg") is not None


def gif_durations(frames: int, fps: float) -> list[int]:
    """Milliseconds per frame. GIF counts in hundredths of a second, so 30 fps cannot be one
    delay; rounding the running total instead of each frame keeps the average exact."""
    ticks = [round(i * 100 / fps) for i in range(frames + 1)]
    return [10 * (b - a) for a, b in itertools.pairwise(ticks)]


class AnimationWriter:
    """Frames in, a .gif or .mp4 out. The file is written under a temporary name beside the
    target and renamed at the end, so a failure never leaves half an animation behind; making
    that temporary file is also the check that the folder can be written, done before any work."""

    def __init__(self, path: Path, fps: float) -> None:
        self.path = Path(path)
        self.format = check_record_path(self.path)
        self.fps = fps
        self.frames_added = 0
        self.size: tuple[int, int] | None = None  # (width, height)
        self._temp = self.path.parent / f".{self.path.name}.{secrets.token_hex(4)}{self.format}"
        try:  # mode 0o666 less the umask, as a plain open() would give the finished file
            os.close(os.open(self._temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except OSError as error:
            raise RecordingError(f"--record: cannot write {self.path} ({error.strerror or error})") from None
        self._gif_frames: list[Any] = []  # palette images: a third of RGB's memory
        self._gif_repeats: list[int] = []  # identical frames in a row, merged into one longer frame
        self._last: np.ndarray | None = None
        self._mp4: Any = None

    def add(self, frame: np.ndarray) -> None:
        frame = np.ascontiguousarray(frame[..., :3], dtype=np.uint8)
        if self.size is None:
            self.size = (frame.shape[1], frame.shape[0])
        elif (frame.shape[1], frame.shape[0]) != self.size:
            frame = resize(frame, *self.size)
        self.frames_added += 1
        if self.format == ".gif":
            self._add_gif(frame)
        else:
            self._add_mp4(frame)

    def _add_gif(self, frame: np.ndarray) -> None:
        from PIL import Image

        if self._last is not None and np.array_equal(frame, self._last):
            self._gif_repeats[-1] += 1  # GIF writers merge these anyway; count them ourselves
            return
        self._last = frame
        self._gif_frames.append(Image.fromarray(frame).quantize(colors=256))
        self._gif_repeats.append(1)

    def _add_mp4(self, frame: np.ndarray) -> None:
        if self._mp4 is None:
            import imageio_ffmpeg

            assert self.size is not None
            self._mp4 = imageio_ffmpeg.write_frames(str(self._temp), self.size, fps=self.fps, codec="libx264",
                                                    pix_fmt_out="yuv420p", macro_block_size=2, quality=7,
                                                    ffmpeg_log_level="error")
            self._mp4.send(None)
        self._mp4.send(frame.tobytes())

    def close(self) -> int:
        """Write the file; returns the frames it holds (identical neighbours in a GIF count once)."""
        if self.frames_added == 0:
            self.abort()
            raise RecordingError(f"--record {self.path}: no frames to write")
        try:
            if self.format == ".gif":
                ticks = gif_durations(self.frames_added, self.fps)
                durations: list[int] = []
                position = 0
                for repeats in self._gif_repeats:
                    durations.append(sum(ticks[position:position + repeats]))
                    position += repeats
                first, *rest = self._gif_frames
                first.save(self._temp, format="GIF", save_all=True, append_images=rest, duration=durations,
                           loop=0, disposal=1)
                frames = len(self._gif_frames)
            else:
                self._mp4.close()
                frames = self.frames_added
            os.replace(self._temp, self.path)
        except OSError as error:
            self.abort()
            raise RecordingError(f"--record: cannot write {self.path} ({error.strerror or error})") from None
        return frames

    def abort(self) -> None:
        if self._mp4 is not None:
            with contextlib.suppress(Exception):  # ffmpeg may already be gone; the file goes below either way
                self._mp4.close()
        self._temp.unlink(missing_ok=True)


def frames_in_file(path: Path) -> int:
    """Frames a GIF holds, read back: what a viewer will show."""
    from PIL import Image

    with Image.open(path) as image:
        return int(getattr(image, "n_frames", 1))
