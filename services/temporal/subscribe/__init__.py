"""Subscribe actions in the temporal-worker process: keeping installations' provider-side
subscriptions registered (task queue `subscribe`), and turning verified provider change
events into `action: "subscribe"` deliveries (a consumer of ampmesh-provider-events).

registration             the SyncSubscriptions workflow and its data types
registration_activities  loading, registering and removing at the providers (under
                         advisory locks), the final failure's subscribe.create.error
registration_plan        which events and watched fields each object needs (pure)
registration_sweep       restarting runs a crash left pending or removing
events                   the consumer of ampmesh-provider-events
targets                  which installations a batch concerns (cached seconds)
fetches                  record fetches merged across batches handled side by side
deliveries               a record event rendered as a subscribe ReadResultPage
"""
