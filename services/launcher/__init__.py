"""The local launcher: brings the whole mesh up on one machine (`ampmesh up`)."""

import os

# The launcher forks PostgreSQL, Redis, Temporal and the rest while its own gRPC and
# Pub/Sub clients are busy on other threads (the infrastructure starts concurrently).
# gRPC's fork handlers then run in the child between fork and exec and can abort it
# (a PostgreSQL start died with SIGABRT on "epoll_wait error: Bad file descriptor").
# The children exec at once and never use the parent's gRPC, so the handlers have nothing
# to protect: turn them off, before anything imports grpc.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
