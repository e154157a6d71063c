"""The provider sandbox: one process that plays the third-party SaaS providers.

It serves, over plain HTTP, an OAuth 2.0 authorization server (Authlib) and record APIs
shaped like HubSpot CRM v3 objects and Salesforce REST query and sObject writes, over
deterministic seeded data; and, over the mesh's gRPC, SandboxControlService to seed
records, inject faults and read counters. When records change it sends the change events
the emulated providers would (HubSpot webhooks, Salesforce change data capture through
an event relay) to what was registered through their subscription APIs. Everything lives
in memory (unless AMPMESH_SANDBOX_STATE_FILE keeps it): a restart is a clean sandbox.

    __main__       the process: both faces on one event loop
    settings       its settings (ports, the OAuth client and test user)
    control        SandboxControlService (seed, touch, faults, counters, reset)
    http_api       the provider HTTP app, assembled from:
      oauth_routes   each provider's authorize, token and revoke endpoints
      oauth          the Authlib authorization server behind them
      hubspot        HubSpot's list and search APIs and its refresh-token revocation
      hubspot_search the search body parsed (pure) and matched against the indexes
      hubspot_writes HubSpot's object create, update, archive and batch writes
      salesforce     Salesforce's query API and its cursors
      salesforce_writes  Salesforce's sObject and composite collection writes
      soql           the SOQL the sandbox understands, parsed (pure)
      hubspot_webhooks  HubSpot's webhooks API v3 and its access-token introspection
      salesforce_events Salesforce's userinfo, channel members, event relays, record GET
      proxy_test     echo, download and upload routes the API proxy's tests call through it
      record_api     what every record request goes through (token, faults, counting)
      errors         the providers' error bodies
    state          SandboxState (records, faults, tokens, counters), from:
      providers      the providers, their catalog names and OAuth paths
      records        seeded records and their sorted indexes
      faults         injected faults and how they answer
      tokens         issued tokens and authorization codes
      webhooks       subscriptions, the change events records raise, and their sender
"""
