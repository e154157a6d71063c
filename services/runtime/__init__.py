"""The shared runtime: what every ampmesh process stands on. It imports only gen/ (the
`ampmesh` package) and libraries, never services.domain or a service (make lint checks).

The process kernel
  config            settings from AMPMESH_* environment variables, one-line errors
  entrypoint        run_service() and the `ampmesh-service --service NAME` command
  tls               private CA and per-service certificates for mTLS
  cert_watch        provisioned certificates renewed on disk: a graceful restart takes
                    the new leaf up (after a random delay spreading an identity's replicas)
  server            grpc.aio server: mTLS, health, reflection, interceptors, graceful shutdown
                    (and, with AMPMESH_HEALTH_PORT, a plaintext port serving only health)
  identity          caller identity from its certificate; per-service AccessPolicy
  interceptors      request id, access log + Prometheus metrics, authorization
  _handlers         rebuilding a grpc method handler around new behaviour (interceptors)
  request_id        one id per RPC, in a contextvar, passed on to the calls it makes
  request_decoding  requests that are not their message (bad UTF-8, corrupt) or hold a NUL:
                    INVALID_ARGUMENT naming the field, before any handler
  errors            INTERNAL without exception text; google.rpc.Status error details
  unimplemented     placeholder services answering UNIMPLEMENTED with a reason (after the
                    service's authentication, when it gives one)
  channels          mTLS client channels with deadlines, retries and default metadata
  logs              structured JSON logs (structlog), stdlib logging included
  tracing           OpenTelemetry spans over OTLP/gRPC (off without AMPMESH_OTLP_ENDPOINT);
                    W3C trace context across gRPC, Pub/Sub, Temporal and webhooks
  server_spans      an RPC's SERVER span, made without the SDK's general machinery
  otlp_encoding     the SDK's OTLP exporter with a cheaper span encoder
  metrics_http      Prometheus exposition on the metrics port
  mcp_auth          who may call an MCP server: the API key each request acts with
  mcp_http          MCP tools over streamable HTTP beside the gRPC server
  mcp_service       running an MCP service (api channel, tools, health)

Storage
  database          asyncpg pools (living through a PostgreSQL restart) and the alembic
                    migrations' entry point
  db_errors         which database errors mean "PostgreSQL cannot be used now" (UNAVAILABLE)
  migrations/       the PostgreSQL schema, as alembic revisions
  secretbox         AES-256-GCM sealing with a rotating keyring (what is sealed, and how
                    it is laid out, is services.domain's: client_secrets,
                    destination_secrets)

The event bus
  envelopes         Envelopes built and read one way; a payload's topic from the contract
  events            publishing: the transactional outbox and its relay; the publisher
  subscriber        consuming: pull a batch, handle, ack or nack
  pubsub_topology   topics and subscriptions as topics.proto declares them
"""
