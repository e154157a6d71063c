"""The api service: every public RPC of the platform, read, write, search and proxy APIs."""
