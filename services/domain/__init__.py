"""What two services share about the domain: the agreements at the seams between them.

It sits between the runtime (the process kernel, the bus and storage) and the services:
it may use gen/ and the runtime; every service may use it; it never imports a service.

catalog/              the providers catalog (providers.json): its loader and checks; what
                      ampmesh supports per provider (actions: the manifest check, the
                      README's table); the sandbox's stand-ins for real provider hosts
                      (api, token-manager, temporal)
manifest/             amp.yaml: parsed with line numbers into manifest.v1 messages and
                      checked against the catalog (api, builder-mcp)
proto_yaml            YAML to protobuf with the line and column of every value (manifest)
routes                the api's route groups and the public services each serves (api,
                      the launcher's edge, mcpanda)
read_plan             an installation's object resolved once into a ReadPlan (page size,
                      window, fields and mappings, destination) from the manifest and
                      config messages (api validates and starts with it, temporal reads
                      pages by it)
record_shape          a provider record rendered as builders receive it (fields,
                      mappedFields, raw) by a plan's selection (temporal delivers read
                      pages with it, the api answers search with it)
read_workflows        the read workflows' names, ids and task queue (api starts them,
                      temporal runs them)
read_bodies           a read page's records in an event: inline or compressed (temporal
                      writes, messenger delivers)
client_secrets        how a provider app's client secret is sealed (api, token-manager)
destination_secrets   how a destination's signing secret and headers are sealed (api,
                      messenger)
webhook_urls          which webhook URLs are allowed (api on save, messenger on send)
subscribe_names       subscribe actions' queue, workflow ids, webhook paths and headers,
                      and the providers' event names (api, temporal, sandbox)
write_plan            a builder's record resolved into the provider's field names
                      (reverse mapping, field settings and defaults) (api)
write_workflows       the write workflows' names, ids and task queue (api starts and
                      wakes them, temporal runs them)
write_events          a write operation's events: created, log lines, finished (api for
                      synchronous writes, temporal for asynchronous ones)
write_outputs         a write's per-record outcome and totals as AsyncWriteOutput (api,
                      temporal)
connectors/           the providers' documented APIs (HubSpot, Salesforce): record pages,
                      search, field metadata and custom fields, record writes, and the
                      HTTP machinery they share (retries, Retry-After, error mapping)
                      (temporal reads and writes with them; the api calls providers with
                      them)
token_manager_client  the token-manager's client settings and stub, and the one
                      classifier of its failure reasons (TokenFailureReason) (api,
                      temporal; the token-manager writes reasons with it)
temporal_client       one Temporal connection for every service that connects: address,
                      namespace, TLS with client certificates, a Temporal Cloud API key
                      (api, temporal, mcpanda)
"""
