"""The temporal service: Temporal workers, one per task queue (issue #6 builds them)."""
