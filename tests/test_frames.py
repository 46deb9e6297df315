"""Frames to terminal cells: exact half-block colours and layout, numpy resizing, the widget's redraws."""

from __future__ import annotations

import numpy as np
import pytest
from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from textual.app import App, ComposeResult
from textual.strip import Strip

from ddpg_tui.media.render import fit, fit_size, resize
from ddpg_tui.ui.widgets import frames
from ddpg_tui.ui.widgets.frames import HALF_BLOCK, FrameView, HalfBlockPainter, color_keys, frame_view, pixel_size

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


def cells(row: list[Segment]) -> list[tuple[str, tuple[int, int, int] | None, tuple[int, int, int] | None]]:
    """One (character, upper colour, lower colour) per cell, runs expanded."""
    out = []
    for segment in row:
        style = segment.style
        assert style is not None
        upper = tuple(style.color.triplet) if style.color and style.color.triplet else None
        lower = tuple(style.bgcolor.triplet) if style.bgcolor and style.bgcolor.triplet else None
        out += [(char, upper, lower) for char in segment.text]
    return out


def test_each_cell_is_an_upper_half_block_with_the_upper_pixel_as_foreground_and_the_lower_as_background() -> None:
    pixels = np.array([[RED, GREEN],
                       [BLUE, WHITE],
                       [(10, 20, 30), (40, 50, 60)],
                       [(1, 2, 3), (4, 5, 6)]], dtype=np.uint8)
    rows = HalfBlockPainter().rows(pixels)
    assert len(rows) == 2  # four pixel rows make two cell rows
    assert cells(rows[0]) == [(HALF_BLOCK, RED, BLUE), (HALF_BLOCK, GREEN, WHITE)]
    assert cells(rows[1]) == [(HALF_BLOCK, (10, 20, 30), (1, 2, 3)), (HALF_BLOCK, (40, 50, 60), (4, 5, 6))]
    assert all(segment.style.color.type.name == "TRUECOLOR" for row in rows for segment in row)


def test_an_odd_last_pixel_row_has_no_background_of_its_own() -> None:
    pixels = np.array([[RED, RED], [GREEN, GREEN], [BLUE, WHITE]], dtype=np.uint8)
    rows = HalfBlockPainter().rows(pixels)
    assert cells(rows[1]) == [(HALF_BLOCK, BLUE, None), (HALF_BLOCK, WHITE, None)]


def test_identical_neighbouring_cells_share_one_segment_and_one_style() -> None:
    pixels = np.zeros((2, 5, 3), dtype=np.uint8)
    pixels[:, 3:] = WHITE
    painter = HalfBlockPainter()
    (row,) = painter.rows(pixels)
    assert [segment.text for segment in row] == [HALF_BLOCK * 3, HALF_BLOCK * 2]
    assert painter.rows(pixels)[0][0].style is row[0].style  # made once, then reused


def test_keys_tell_apart_colours_that_differ_in_one_channel_by_one() -> None:
    pixels = np.array([[[0, 0, 0], [0, 0, 1]], [[0, 1, 0], [1, 0, 0]]], dtype=np.uint8)
    keys = color_keys(pixels)
    assert keys.shape == (1, 2) and keys[0, 0] != keys[0, 1]


def test_truecolor_cells_fall_back_to_256_colours_on_a_terminal_without_truecolor() -> None:
    for system, expected in (("truecolor", "38;2;255;0;0;48;2;0;0;255"), ("256", "38;5;196;48;5;21")):
        # A painter each: Textual keeps a Style's first ANSI codes on the Style, and a real app has one system.
        (row,) = HalfBlockPainter().rows(np.array([[RED], [BLUE]], dtype=np.uint8))
        console = Console(color_system=system, force_terminal=True)  # type: ignore[arg-type]
        assert expected in Strip(row).render(console)  # how Textual writes a line to the terminal


def test_pixel_size_fits_two_pixels_a_cell_and_keeps_the_aspect_ratio() -> None:
    assert pixel_size(500, 500, 60, 20) == (40, 40)  # square: limited by 20 rows = 40 pixels
    assert pixel_size(600, 400, 60, 20) == (60, 40)  # 3:2 exactly fills 60 x 40
    assert pixel_size(600, 400, 30, 20) == (30, 20)
    assert fit_size(1000, 10, 60, 40) == (60, 1)  # never zero


@pytest.mark.parametrize(("shape", "box"), [((500, 500), (60, 40)), ((400, 600), (60, 40)), ((400, 600), (37, 23)),
                                            ((480, 480), (11, 90)), ((3, 7), (70, 30))])
def test_fitting_keeps_the_aspect_ratio_to_within_a_pixel(shape: tuple[int, int], box: tuple[int, int]) -> None:
    frame = np.zeros((*shape, 3), dtype=np.uint8)
    out = fit(frame, *box)
    h, w = out.shape[:2]
    assert w <= box[0] and h <= box[1] and (w == box[0] or h == box[1])
    assert abs(w / h - shape[1] / shape[0]) <= max(1 / h, w / h ** 2, shape[1] / shape[0] / w) + 1e-9


def test_shrinking_averages_each_block_of_pixels_and_keeps_flat_colours_exact() -> None:
    frame = np.zeros((4, 4, 3), dtype=np.uint8)
    frame[:2, :2] = 255  # the top-left 2x2 block white, the rest black
    frame[2:, 2:] = (10, 20, 30)
    out = resize(frame, 2, 2)
    assert out.tolist() == [[[255, 255, 255], [0, 0, 0]], [[0, 0, 0], [10, 20, 30]]]
    half = resize(np.array([[[0, 0, 0], [255, 255, 255]]], dtype=np.uint8), 1, 1)
    assert half.tolist() == [[[128, 128, 128]]]  # a thin line fades rather than vanishing


def test_growing_repeats_pixels() -> None:
    frame = np.array([[RED, BLUE]], dtype=np.uint8)
    assert resize(frame, 4, 2).tolist() == [[list(RED)] * 2 + [list(BLUE)] * 2] * 2


def test_strips_centre_the_frame_and_fill_the_margins() -> None:
    frame = np.zeros((10, 10, 3), dtype=np.uint8)
    frame[:] = RED
    blank = Style(bgcolor="black")
    strips = HalfBlockPainter().strips(frame, 20, 8, blank)
    assert len(strips) == 8 and all(strip.cell_length == 20 for strip in strips)
    text = ["".join(segment.text for segment in strip) for strip in strips]
    # 10x10 pixels into 20x8 cells: 16x16 pixels at most, so 16 columns and 8 rows, 2 columns each side.
    assert all(line == "  " + HALF_BLOCK * 16 + "  " for line in text)


class FrameHost(App):
    def compose(self) -> ComposeResult:
        yield FrameView(id="view")


async def test_the_view_redraws_only_when_the_frame_changes() -> None:
    frame = np.zeros((40, 60, 3), dtype=np.uint8)
    frame[:, :30] = RED
    async with FrameHost().run_test(size=(60, 20)) as pilot:
        view = pilot.app.query_one(FrameView)
        assert view.show_frame(frame)
        await pilot.pause()
        draws = view.draws
        assert draws >= 1
        assert not view.show_frame(frame.copy())  # equal pixels: nothing to draw
        await pilot.pause()
        assert view.draws == draws
        changed = frame.copy()
        changed[0, 0] = BLUE
        assert view.show_frame(changed)
        await pilot.pause()
        assert view.draws == draws + 1
        coloured = {segment.style.color.triplet for y in range(20) for segment in view.render_line(y)
                    if segment.text.startswith(HALF_BLOCK)}
        assert (255, 0, 0) in coloured


def test_the_protocol_is_half_blocks_in_tmux_and_when_nobody_asked(monkeypatch) -> None:
    monkeypatch.delenv(frames.GRAPHICS_ENV, raising=False)
    monkeypatch.setattr(frames, "_detected", None)
    assert frames.graphics_protocol() == "halfblock"
    monkeypatch.setenv("TMUX", "/tmp/tmux-0/default,1,0")
    assert frames.detect_graphics() == "halfblock"  # no terminal query: tmux passes neither protocol through
    monkeypatch.setenv(frames.GRAPHICS_ENV, "kitty")
    assert frames.detect_graphics() == "kitty" and frames.graphics_protocol() == "kitty"
    assert isinstance(frame_view("kitty"), frames.PixelFrameView)
    assert isinstance(frame_view("halfblock"), FrameView)


async def test_kitty_frames_go_through_textual_image_fitted_to_the_widgets_pixels(monkeypatch) -> None:
    from textual_image.renderable import tgp

    sent: list[dict[str, object]] = []
    monkeypatch.setattr(tgp, "_send_tgp_message", lambda **message: sent.append(message))  # no real terminal here
    monkeypatch.setattr(frames, "_cell_pixels", lambda: (10, 20))

    class KittyHost(App):
        def compose(self) -> ComposeResult:
            yield frame_view("kitty", id="view")

    frame = np.zeros((400, 600, 3), dtype=np.uint8)
    frame[:, :300] = RED
    async with KittyHost().run_test(size=(40, 12)) as pilot:
        view = pilot.app.query_one(frames.PixelFrameView)
        assert view.show_frame(frame)
        await pilot.pause()
        image = view.children[0].image
        assert image.size == (360, 240)  # 40x12 cells of 10x20 pixels hold 400x240: 3:2 fits 360x240
        assert not view.show_frame(frame.copy())
        await pilot.pause()
    assert any(message.get("a") == "p" for message in sent)  # a placement was sent for the image
