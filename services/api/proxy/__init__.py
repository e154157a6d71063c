"""The proxy route group: the decisions the edge applies to calls on the proxy host.

The proxy host's calls travel on Envoy's data path (envoy/proxy.lua): this group only
decides, per set of caller headers, where they go and with which credentials
(authorization.py), from the catalog's base URL (targets.py), keeping throttle holds and
rate-limit leases in Redis (limits.py), shared by every edge process. It shares only the
api's common layer with the other groups.
"""

from services.api.proxy.authorization import service

__all__ = ["service"]
