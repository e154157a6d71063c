"""The metrics service (see ARCHITECTURE.md)."""
