"""The DDPG algorithm and its training loop. Knows nothing of any user interface."""
