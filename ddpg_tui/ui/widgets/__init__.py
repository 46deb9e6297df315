"""Dashboard widgets: each draws one part of a session Snapshot."""
