"""An env's rgb_array frames in the terminal.

Two ways to draw, picked once per process by `graphics_protocol()`:

- Unicode half blocks (the default, and always inside tmux): each cell is "▀" with the
  upper pixel as its foreground colour and the lower pixel as its background, so a cell
  holds two square-ish pixels. Colours are truecolor; Textual downgrades them to 256
  colours when the terminal says it has no more (Rich's colour-system detection), so that
  fallback needs nothing here. Our own code, in numpy: it is exact (tested colour by colour)
  and fast enough to play at 20 fps, where textual-image's half-cell renderable makes a
  new Style for every cell of every frame.
- Kitty graphics or Sixel through textual-image, when the terminal answered its queries
  before the app started (they cannot be asked once Textual reads stdin): the library
  writes the protocols' escape sequences, we never do.

Frames are fitted with Pillow (ddpg_tui.media.render.fit: area averages, aspect ratio kept) to
the cells before they are drawn, so a 500x500 frame costs its downscale once per change.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any, Literal

from rich.color import Color
from rich.color_triplet import ColorTriplet
from rich.segment import Segment
from rich.style import Style
from textual.app import ComposeResult
from textual.strip import Strip
from textual.widget import Widget

if TYPE_CHECKING:
    import numpy as np

# numpy and ddpg_tui.media.render (which brings gymnasium) are imported where they are used: the
# app calls detect_graphics() before it starts, and the preset list must come up quickly.

HALF_BLOCK = "▀"
GraphicsProtocol = Literal["halfblock", "kitty", "sixel"]
PROTOCOLS: tuple[GraphicsProtocol, ...] = ("halfblock", "kitty", "sixel")
GRAPHICS_ENV = "DDPG_TUI_GRAPHICS"  # auto (the default), halfblock, kitty or sixel
_NO_PIXEL = 1 << 24  # a colour no RGB pixel has: "no lower pixel" in an odd last row
_LOWER_BITS = 25  # a cell's key: the upper pixel's RGB above 25 bits that hold the lower's (or _NO_PIXEL)

_detected: GraphicsProtocol | None = None


# Choosing the protocol -------------------------------------------------------------------


def detect_graphics() -> GraphicsProtocol:
    """Ask the terminal (through textual-image) whether it shows Kitty graphics or Sixel.

    Call it before the Textual app starts: the queries read the terminal's answer from stdin,
    which Textual's input thread takes over once it runs. tmux gets half blocks (it passes
    neither protocol through by default), and so does anything that is not a terminal.
    """
    global _detected
    forced = _forced_protocol()
    if forced is not None:
        _detected = forced
    elif "TMUX" in os.environ or not (sys.__stdout__ and sys.__stdout__.isatty()):
        _detected = "halfblock"
    else:
        try:
            import textual_image.renderable as renderable
        except ImportError:  # the library is missing: half blocks still show everything
            _detected = "halfblock"
        else:
            _detected = {renderable.TGPImage: "kitty", renderable.SixelImage: "sixel"}.get(
                renderable.Image, "halfblock")
    return _detected


def graphics_protocol() -> GraphicsProtocol:
    """What `detect_graphics` found, or DDPG_TUI_GRAPHICS, or half blocks when nobody asked."""
    return _forced_protocol() or _detected or "halfblock"


def _forced_protocol() -> GraphicsProtocol | None:
    value = os.environ.get(GRAPHICS_ENV, "auto").strip().lower()
    return value if value in PROTOCOLS else None  # type: ignore[return-value]


# Half blocks -----------------------------------------------------------------------------


def pixel_size(frame_width: int, frame_height: int, columns: int, rows: int) -> tuple[int, int]:
    """The pixels a frame is fitted to in `columns` x `rows` half-block cells (two pixels a cell, stacked)."""
    from ddpg_tui.media.render import fit_size

    return fit_size(frame_width, frame_height, columns, 2 * rows)


def color_keys(pixels: np.ndarray) -> np.ndarray:
    """(rows, columns) int64 keys, one per cell: the upper pixel's 24-bit RGB << 25 | the lower pixel's."""
    import numpy as np

    rgb = pixels[..., :3].astype(np.int64)
    packed = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    if packed.shape[0] % 2:
        packed = np.vstack([packed, np.full((1, packed.shape[1]), _NO_PIXEL, dtype=np.int64)])
    return (packed[0::2] << _LOWER_BITS) | packed[1::2]


class HalfBlockPainter:
    """Pixels to rows of Segments, one "▀" per cell, with identical neighbours merged into one
    Segment and every Style made once (Style objects are the costly part of a cell)."""

    MAX_STYLES = 8192  # a palette of this many (upper, lower) pairs is kept between frames

    def __init__(self) -> None:
        self._styles: dict[int, Style] = {}

    def style(self, key: int) -> Style:
        style = self._styles.get(key)
        if style is None:
            if len(self._styles) >= self.MAX_STYLES:
                self._styles.clear()
            upper, lower = key >> _LOWER_BITS, key & ((1 << _LOWER_BITS) - 1)
            bgcolor = None if lower == _NO_PIXEL else _color(lower)
            style = self._styles[key] = Style.from_color(_color(upper), bgcolor)
        return style

    def rows(self, pixels: np.ndarray) -> list[list[Segment]]:
        import numpy as np

        keys = color_keys(pixels)
        out: list[list[Segment]] = []
        for row in keys:
            starts = np.flatnonzero(np.concatenate(([True], row[1:] != row[:-1])))
            ends = np.append(starts[1:], len(row))
            out.append([Segment(HALF_BLOCK * int(end - start), self.style(int(row[start])))
                        for start, end in zip(starts, ends, strict=True)])
        return out

    def strips(self, frame: np.ndarray, width: int, height: int, blank: Style) -> list[Strip]:
        """`frame` fitted into width x height cells and centred; `blank` styles the margins."""
        from ddpg_tui.media.render import fit

        if width <= 0 or height <= 0:
            return []
        w, h = pixel_size(frame.shape[1], frame.shape[0], width, height)
        if w == 0:
            return [Strip.blank(width, blank)] * height
        rows = self.rows(fit(frame, w, h))
        left = (width - w) // 2
        top = (height - len(rows)) // 2
        margin_left = [Segment(" " * left, blank)] if left else []
        margin_right = [Segment(" " * (width - w - left), blank)] if width - w - left else []
        strips = [Strip.blank(width, blank)] * top
        strips += [Strip(margin_left + row + margin_right, width) for row in rows]
        strips += [Strip.blank(width, blank)] * (height - len(strips))
        return strips


def _same(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    import numpy as np

    return a is b or (a is not None and b is not None and a.shape == b.shape and np.array_equal(a, b))


def _color(rgb: int) -> Color:
    return Color.from_triplet(ColorTriplet((rgb >> 16) & 0xFF, (rgb >> 8) & 0xFF, rgb & 0xFF))


# Widgets ---------------------------------------------------------------------------------


class FrameView(Widget):
    """Shows one frame at a time in half blocks; `show_frame` redraws only when the frame changed."""

    DEFAULT_CSS = """
    FrameView {
        width: 1fr;
        height: 1fr;
    }
    """

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.frame: np.ndarray | None = None
        self.draws = 0  # frames turned into cells: tests and the benchmark read it
        self._painter = HalfBlockPainter()
        self._strips: list[Strip] | None = None
        self._strips_size: tuple[int, int] = (0, 0)

    def show_frame(self, frame: np.ndarray | None) -> bool:
        """Show `frame` (HxWx3 uint8); returns False, drawing nothing, when it is what is shown."""
        if _same(frame, self.frame):
            return False
        self.frame = frame
        self._strips = None
        self.refresh()
        return True

    def render_line(self, y: int) -> Strip:
        width, height = self.size
        if self.frame is None:
            return Strip.blank(width, self.rich_style)
        if self._strips is None or self._strips_size != (width, height):
            self._strips = self._painter.strips(self.frame, width, height, self.rich_style)
            self._strips_size = (width, height)
            self.draws += 1
        return self._strips[y] if y < len(self._strips) else Strip.blank(width, self.rich_style)


class PixelFrameView(Widget):
    """Shows frames with Kitty graphics or Sixel, drawn by textual-image's widget.

    Each frame is fitted to the widget's pixels with numpy first (the terminal's cell size
    comes from textual-image), so the library only encodes what is shown. textual-image
    documents Sixel animation as flickering in some terminals (lnqs/textual-image#155);
    DDPG_TUI_GRAPHICS=halfblock is the way out.
    """

    DEFAULT_CSS = """
    PixelFrameView {
        width: 1fr;
        height: 1fr;
        align: center middle;
    }
    PixelFrameView > * {
        width: auto;
        height: auto;
    }
    """

    def __init__(self, protocol: GraphicsProtocol, *, name: str | None = None, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.protocol = protocol
        self.frame: np.ndarray | None = None
        self.draws = 0

    def compose(self) -> ComposeResult:
        from textual_image.widget import SixelImage, TGPImage

        yield (TGPImage if self.protocol == "kitty" else SixelImage)()

    def show_frame(self, frame: np.ndarray | None) -> bool:
        if _same(frame, self.frame):
            return False
        self.frame = frame
        if not self.children:
            return True  # not composed yet; on_mount shows it
        self._push()
        return True

    def on_mount(self) -> None:
        if self.frame is not None:
            self._push()

    def on_resize(self) -> None:
        if self.frame is not None:
            self._push()

    def _push(self) -> None:
        from PIL import Image

        from ddpg_tui.media.render import fit

        assert self.frame is not None
        width, height = self.size
        if width <= 0 or height <= 0:
            return
        cell_width, cell_height = _cell_pixels()
        pixels = fit(self.frame, width * cell_width, height * cell_height)
        image: Any = self.children[0]
        image.image = Image.fromarray(pixels)
        self.draws += 1


def _cell_pixels() -> tuple[int, int]:
    """A cell's size in pixels, as textual-image measured it (it asks once, before the app starts)."""
    try:
        from textual_image._terminal import get_cell_size  # not public API: the fallback below covers a rename

        cell = get_cell_size()
        return (cell.width, cell.height)
    except Exception:  # a rename, or its TerminalError when stdout is closed
        return (10, 20)  # VT340's cell, textual-image's own default


def frame_view(protocol: GraphicsProtocol | None = None, *, id: str | None = None,
               classes: str | None = None) -> FrameView | PixelFrameView:
    """The frame widget for `protocol`, by default the one this terminal was found to speak."""
    protocol = protocol or graphics_protocol()
    if protocol == "halfblock":
        return FrameView(id=id, classes=classes)
    return PixelFrameView(protocol, id=id, classes=classes)
