"""The proxy route group: the decisions the edge applies to calls on the proxy host.

The proxy host's calls travel on Envoy's data path (envoy/proxy.lua): this group only
decides, per set of caller headers, where they go and with which credentials
(authorization.py), from the catalog's base URL (targets.py), refusing what it must with
the headers clients read (refusals.py), keeping throttle holds and rate-limit leases in
Redis (limits.py), shared by every edge process; and it counts the calls from the edge's
access log stream (access_metrics.py). It shares only the api's common layer with the
other groups.
"""

from services.api.proxy.authorization import service

__all__ = ["service"]
