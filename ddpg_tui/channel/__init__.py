"""The control channel of a live run: a Unix socket that the training process listens on.

protocol.py says what the messages are, location.py where a run's socket is and whether it is still
live, server.py is the training process's side and client.py everyone else's (docs/channel.md).
The learner (agents/) never imports this package: a front-end wires the server to a Trainer's
event sink and its Controls.
"""
