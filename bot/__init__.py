"""Process wiring: the ragbot CLI, the Bolt app, the reconciler, the scheduler."""
