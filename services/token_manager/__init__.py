"""The token-manager service (see ARCHITECTURE.md)."""
