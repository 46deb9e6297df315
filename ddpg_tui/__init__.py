"""ddpg-tui: the Textual app and the `ddpg-tui` command around the `agents` engine."""

__version__ = "0.1.0"
