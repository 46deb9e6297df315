"""Presets: every shipped one validates, and they ship inside the wheel."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from presets import PresetError, list_presets, load_preset, parse_preset

ROOT = Path(__file__).resolve().parents[1]


def test_the_three_presets_are_shipped() -> None:
    assert {"pendulum", "mountain-car-continuous", "lunar-lander-continuous"} <= set(list_presets())


@pytest.mark.parametrize("name", list_presets())
def test_every_preset_validates_and_names_its_source(name: str) -> None:
    preset = load_preset(name)
    assert preset.config.env_id == preset.env_id
    assert preset.solved_threshold is not None and preset.solved_source
    assert preset.description
    text = (ROOT / "presets" / f"{name}.toml").read_text()
    assert "Starting values:" in text  # the comment block says where the values come from


def test_unknown_preset_lists_the_available_ones() -> None:
    with pytest.raises(PresetError, match=r"unknown preset 'nope'; available: .*pendulum"):
        load_preset("nope")


@pytest.mark.parametrize(("typed", "meant"), [("pendelum", "pendulum"), ("Pendulum-v1", "pendulum"),
                                              ("halfcheetah", "half-cheetah"), ("lunar", "lunar-lander-continuous")])
def test_a_mistyped_preset_gets_a_did_you_mean(typed: str, meant: str) -> None:
    with pytest.raises(PresetError, match=rf"unknown preset '{typed}' \(did you mean '{meant}'\?\); available: "):
        load_preset(typed)


def test_a_preset_name_far_from_every_preset_gets_no_guess() -> None:
    with pytest.raises(PresetError) as error:
        load_preset("nope")
    assert "did you mean" not in str(error.value)


def test_preset_with_a_bad_value_names_the_field() -> None:
    with pytest.raises(PresetError, match=r"preset 'x': gamma: 3\.0 is not allowed"):
        parse_preset("x", 'env_id = "Pendulum-v1"\n[hyperparameters]\ngamma = 3.0\n')


def test_preset_with_an_unknown_key_names_it() -> None:
    with pytest.raises(PresetError, match="unknown hyperparameter 'gama'"):
        parse_preset("x", 'env_id = "Pendulum-v1"\n[hyperparameters]\ngama = 0.9\n')
    with pytest.raises(PresetError, match="unknown key 'colour'"):
        parse_preset("x", 'env_id = "Pendulum-v1"\ncolour = "red"\n')


def test_preset_that_is_not_toml_is_refused() -> None:
    with pytest.raises(PresetError, match="not valid TOML"):
        parse_preset("x", "env_id = \n")


def test_wheel_ships_the_presets_and_the_stylesheet(tmp_path: Path) -> None:
    pytest.importorskip("setuptools")  # the build backend, for --no-build-isolation
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("ddpg_tui-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for name in list_presets():
        assert f"presets/{name}.toml" in names
    assert "ddpg_tui/ui/app.tcss" in names


@pytest.mark.parametrize("name", list_presets())
def test_every_preset_saves_periodically_so_a_crash_loses_little(name: str) -> None:
    config = load_preset(name).config
    assert 0 < config.save_every < config.total_steps
    assert config.total_steps // config.save_every >= 4


def readme_section(name: str) -> str:
    text = (ROOT / "README.md").read_text()
    return text[text.index(f"<!-- section: {name} -->"):text.index("<!-- end: " + name + " -->")]


@pytest.mark.parametrize("name", list_presets())
def test_the_readme_lists_every_preset_with_its_env_and_steps(name: str) -> None:
    preset = load_preset(name)
    rows = [line for line in readme_section("presets").splitlines() if line.startswith(f"| `{name}`")]
    assert len(rows) == 1, f"README's presets table has {len(rows)} rows for {name}"
    cells = [cell.strip() for cell in rows[0].split("|")]
    assert cells[2] == preset.env_id
    assert cells[4] == f"{preset.config.total_steps:,}"


def test_the_readme_names_every_hyperparameter() -> None:
    from agents.config import FIELDS

    section = readme_section("presets")
    assert [field for field in FIELDS if f"`{field}`" not in section] == []
