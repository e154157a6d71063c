"""The scribe service (see ARCHITECTURE.md)."""
