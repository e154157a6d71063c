"""The read route group: ReadService (triggered reads, pausing and resuming schedules).

It shares only the api's common layer (auth, context, common, stored, reads) with the
platform group, so the two can deploy apart.
"""

from services.api.read.service import service

__all__ = ["service"]
