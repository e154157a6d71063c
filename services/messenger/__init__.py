"""The messenger service (see ARCHITECTURE.md)."""
