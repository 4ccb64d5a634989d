"""Running generated projects: ansible-runner, progress from its events, whole-fleet rollback."""
