"""A form of hyperparameter fields, each validated as you type by agents.config."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.validation import ValidationResult, Validator
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
    if isinstance(value, tuple):
        return "[" + ", ".join(str(v) for v in value) + "]"
    if isinstance(value, str):
        return value
    return repr(value) if isinstance(value, float) else str(value)


class HyperparameterForm(VerticalScroll):
    """One row per field: name, input, and either the field's help or why it is invalid."""

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
            spec = FIELDS[name]
            with Horizontal(classes="field-row"):
                yield Label(name, classes="field-name")
                yield Input(display(getattr(self.config, name)), id=f"field-{name}", classes="field-input",
                            validators=[FieldValidator(name)], validate_on=["changed", "blur", "submitted"],
                            compact=True)
                yield Label(f"{spec.help}; {spec.allowed()}", id=f"hint-{name}", classes="field-hint")

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
            spec = FIELDS[name]
            hint.update(f"{spec.help}; {spec.allowed()}")
            hint.remove_class("invalid")
        self.post_message(self.Validity(self.is_valid))

    @property
    def is_valid(self) -> bool:
        return all(self.query_one(f"#field-{name}", Input).is_valid for name in self.names)

    def values(self) -> dict[str, Any]:
        """The parsed values; call only when `is_valid`."""
        return {name: parse_value(name, self.query_one(f"#field-{name}", Input).value) for name in self.names}

    def changed_values(self) -> dict[str, Any]:
        return {name: value for name, value in self.values().items() if value != getattr(self.config, name)}

    def reset(self, config: DDPGConfig) -> None:
        self.config = config
        for name in self.names:
            self.query_one(f"#field-{name}", Input).value = display(getattr(config, name))
