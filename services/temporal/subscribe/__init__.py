"""Subscribe actions in the temporal-worker process: keeping installations' provider-side
subscriptions registered (task queue `subscribe`), and turning verified provider change
events into `action: "subscribe"` deliveries (a consumer of ampmesh-provider-events).
"""
