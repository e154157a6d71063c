"""The temporal service: Temporal workers, one per task queue (ARCHITECTURE.md names them)."""
