"""A form of hyperparameter fields, each validated as you type by agents.config."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from typing import Any

from textual import events
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.validation import ValidationResult, Validator
from textual.widget import Widget
from textual.widgets import Input, Label

from agents.config import FIELDS, ConfigError, DDPGConfig, parse_value
from ddpg_tui.sweeps.space import NOT_SEARCHABLE, SampleSpec, looks_like_sample, parse_sample, parse_values

SWEPT_MARK = "≈"
EXAMPLE_DISTRIBUTION = {float: "loguniform(1e-4,1e-2)", int: "randint(64,512)"}


class FieldValidator(Validator):
    """Runs the engine's own validation, so the form and the CLI refuse the same values.

    A field marked to sweep takes several values, separated by commas, each checked the
    same way (as `ddpg-tui sweep --grid` checks them), or a distribution to draw from, such as
    `loguniform(1e-4,1e-2)` (as `--sample` checks it).
    """

    def __init__(self, name: str, swept: Callable[[str], bool] = lambda name: False) -> None:
        super().__init__()
        self.field_name = name
        self.swept = swept

    def validate(self, value: str) -> ValidationResult:
        try:
            if self.swept(self.field_name):
                parse_swept(self.field_name, value)
            else:
                parse_value(self.field_name, value)
        except ConfigError as error:
            return self.failure(str(error))
        return self.success()


def parse_swept(name: str, raw: str) -> tuple[Any, ...] | SampleSpec:
    """A swept field's text: the values of a grid, or the distribution of a sample."""
    if not looks_like_sample(raw):
        return parse_values(name, raw)
    text = f"{name}={raw.strip()}"
    try:
        return parse_sample(text)
    except ConfigError as error:  # the field is the context here, not the command line's flag
        raise ConfigError(str(error).replace(f"--sample {text!r}: ", "").replace("--sample ", "")) from None


def display(value: Any) -> str:
    """A value as a user would type it: TOML's `true`, not Python's `True` (both are accepted)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "[" + ", ".join(str(v) for v in value) + "]"
    if isinstance(value, str):
        return value
    return repr(value) if isinstance(value, float) else str(value)


def field_help(name: str, swept: bool = False) -> str:
    spec = FIELDS[name]
    if swept:
        return (f"swept: one trial per value, separated by commas, or a distribution such as "
                f"{EXAMPLE_DISTRIBUTION.get(spec.kind, 'choice(a,b)')}; each {spec.allowed()}")
    return f"{spec.help}; {spec.allowed()}"


class HyperparameterForm(VerticalScroll):
    """One row per field: name, input, and either the field's help or why it is invalid.

    The help wraps instead of being cut: its end is the allowed range, and the reason a
    value is refused, which is the part a user needs. A marker and the row's colour show
    which field has focus; scrolling follows focus, so Tab reaches every field.
    """

    can_focus = False  # Tab goes from field to field; the form scrolls to follow it

    class Validity(Message):
        def __init__(self, valid: bool) -> None:
            super().__init__()
            self.valid = valid

    def __init__(self, config: DDPGConfig, names: Iterable[str], sweepable: bool = False, **kwargs: Any) -> None:
        """`sweepable`: fields may be marked to sweep (the start form; not the live dialog)."""
        super().__init__(**kwargs)
        self.config = config
        self.names = list(names)
        self.sweepable = sweepable
        self.swept: set[str] = set()  # fields marked to sweep: several values, one trial each

    def compose(self) -> ComposeResult:
        for name in self.names:
            with Horizontal(classes="field-row", id=f"row-{name}"):
                yield Label("▶", classes="field-marker")
                if self.sweepable:
                    yield Label("", id=f"swept-{name}", classes="field-swept")
                yield Label(name, classes="field-name")
                yield Input(display(getattr(self.config, name)), id=f"field-{name}", classes="field-input",
                            validators=[FieldValidator(name, self.is_swept)],
                            validate_on=["changed", "blur", "submitted"], compact=True)
                # markup=False: reasons quote values such as [0], which are not markup
                yield Label(field_help(name), id=f"hint-{name}", classes="field-hint", markup=False)

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        # Textual scrolls the focused input into view; its help can wrap below it, so show the whole row.
        row = event.widget.parent
        if isinstance(row, Widget):
            self.scroll_to_widget(row, animate=False)

    def on_input_changed(self, event: Input.Changed) -> None:
        name = (event.input.id or "").removeprefix("field-")
        if name not in FIELDS:
            return
        self._show_validity(name, event.validation_result)

    def _show_validity(self, name: str, result: ValidationResult | None) -> None:
        hint = self.query_one(f"#hint-{name}", Label)
        if result is not None and not result.is_valid:
            hint.update(result.failure_descriptions[0])
            hint.add_class("invalid")
        else:
            hint.update(field_help(name, name in self.swept))
            hint.remove_class("invalid")
        self.post_message(self.Validity(self.is_valid))

    # Sweeping ----------------------------------------------------------------------------

    def is_swept(self, name: str) -> bool:
        return name in self.swept

    def toggle_sweep(self, name: str) -> str | None:
        """Mark `name` to sweep, or unmark it; returns why it cannot be swept, if it cannot."""
        if not self.sweepable:
            return "these fields apply to this run only"
        if name in NOT_SEARCHABLE:
            reason = NOT_SEARCHABLE[name].replace("use --seeds", "choose the seeds when the sweep starts")
            return f"{name} is the same in every trial of a sweep" + (f" ({reason})" if reason else "")
        field = self.query_one(f"#field-{name}", Input)
        if name in self.swept:
            self.swept.discard(name)
            # Back to one value: the first one typed, which is what a user most likely meant; a distribution
            # (valid or not) has no first value, so the form's own comes back.
            if looks_like_sample(field.value):
                field.value = display(getattr(self.config, name))
            else:
                with contextlib.suppress(ConfigError):
                    field.value = display(parse_values(name, field.value)[0])
        else:
            self.swept.add(name)
        self.query_one(f"#swept-{name}", Label).update(SWEPT_MARK if name in self.swept else "")
        self.query_one(f"#row-{name}").set_class(name in self.swept, "-swept")
        self._show_validity(name, field.validate(field.value))
        return None

    def _parsed_swept(self) -> dict[str, tuple[Any, ...] | SampleSpec]:
        return {name: parse_swept(name, self.query_one(f"#field-{name}", Input).value)
                for name in self.names if name in self.swept}

    def grid(self) -> dict[str, tuple[Any, ...]]:
        """The swept fields given values, in form order; call only when `is_valid`."""
        return {name: v for name, v in self._parsed_swept().items() if not isinstance(v, SampleSpec)}

    def samples(self) -> tuple[SampleSpec, ...]:
        """The swept fields given a distribution, in form order; call only when `is_valid`."""
        return tuple(v for v in self._parsed_swept().values() if isinstance(v, SampleSpec))

    @property
    def is_valid(self) -> bool:
        return not self.invalid_names()

    def invalid_names(self) -> list[str]:
        return [name for name in self.names if not self.query_one(f"#field-{name}", Input).is_valid]

    def refuse(self) -> None:
        """Say which fields stop the form, and take the user to the first (it may be scrolled out of view)."""
        names = self.invalid_names()
        self.notify(f"Fix {', '.join(names)} first: the reason is beside the field", severity="error")
        self.query_one(f"#field-{names[0]}", Input).focus()

    def values(self) -> dict[str, Any]:
        """The parsed values of the fields not swept; call only when `is_valid`."""
        return {name: parse_value(name, self.query_one(f"#field-{name}", Input).value) for name in self.names
                if name not in self.swept}

    def changed_values(self) -> dict[str, Any]:
        return {name: value for name, value in self.values().items() if value != getattr(self.config, name)}

    def reset(self, config: DDPGConfig) -> None:
        self.config = config
        for name in list(self.swept):
            self.toggle_sweep(name)
        for name in self.names:
            self.query_one(f"#field-{name}", Input).value = display(getattr(config, name))
