"""The app's screens: picker, hyperparameters, dashboard, and the modals."""
