"""The Write API (the write host): service.py is the servicer; request.py decodes a
request, target.py finds what it writes to, sync.py writes while the caller waits,
idempotency.py keeps Idempotency-Key answers."""

from services.api.write.service import service

__all__ = ["service"]
