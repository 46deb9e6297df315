"""The user interface room: the Textual app, its screens and widgets, the session and the process lifecycle."""
