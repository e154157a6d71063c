"""The search route group: SearchService (records looked up by field values).

It shares only the api's common layer (auth, context, common, stored, provider_calls)
with the platform and read groups, so the groups can deploy apart.
"""

from services.api.search.service import service

__all__ = ["service"]
