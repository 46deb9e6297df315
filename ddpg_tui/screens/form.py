"""A form of hyperparameter fields, each validated as you type by agents.config."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from textual import events
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.validation import ValidationResult, Validator
from textual.widget import Widget
from textual.widgets import Input, Label

from agents.config import FIELDS, ConfigError, DDPGConfig, parse_value


class FieldValidator(Validator):
    """Runs the engine's own validation, so the form and the CLI refuse the same values."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.field_name = name

    def validate(self, value: str) -> ValidationResult:
        try:
            parse_value(self.field_name, value)
        except ConfigError as error:
            return self.failure(str(error))
        return self.success()


def display(value: Any) -> str:
    """A value as a user would type it: TOML's `true`, not Python's `True` (both are accepted)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "[" + ", ".join(str(v) for v in value) + "]"
    if isinstance(value, str):
        return value
    return repr(value) if isinstance(value, float) else str(value)


def field_help(name: str) -> str:
    spec = FIELDS[name]
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

    def __init__(self, config: DDPGConfig, names: Iterable[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.config = config
        self.names = list(names)

    def compose(self) -> ComposeResult:
        for name in self.names:
            with Horizontal(classes="field-row"):
                yield Label("▶", classes="field-marker")
                yield Label(name, classes="field-name")
                yield Input(display(getattr(self.config, name)), id=f"field-{name}", classes="field-input",
                            validators=[FieldValidator(name)], validate_on=["changed", "blur", "submitted"],
                            compact=True)
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
        hint = self.query_one(f"#hint-{name}", Label)
        result = event.validation_result
        if result is not None and not result.is_valid:
            hint.update(result.failure_descriptions[0])
            hint.add_class("invalid")
        else:
            hint.update(field_help(name))
            hint.remove_class("invalid")
        self.post_message(self.Validity(self.is_valid))

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
        """The parsed values; call only when `is_valid`."""
        return {name: parse_value(name, self.query_one(f"#field-{name}", Input).value) for name in self.names}

    def changed_values(self) -> dict[str, Any]:
        return {name: value for name, value in self.values().items() if value != getattr(self.config, name)}

    def reset(self, config: DDPGConfig) -> None:
        self.config = config
        for name in self.names:
            self.query_one(f"#field-{name}", Input).value = display(getattr(config, name))
