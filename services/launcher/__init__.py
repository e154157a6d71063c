"""The local launcher: brings the whole mesh up on one machine (`ampmesh up`)."""
