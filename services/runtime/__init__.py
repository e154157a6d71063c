"""The shared runtime every ampmesh service uses.

config        settings from AMPMESH_* environment variables, one-line errors
tls           private CA and per-service certificates for mTLS
server        grpc.aio server: mTLS, health, reflection, interceptors, graceful shutdown
identity      caller identity from its certificate; per-service AccessPolicy
interceptors  request id, access log + Prometheus metrics, authorization
errors        INTERNAL without exception text; google.rpc.Status error details
request_decoding  requests that are not their message (bad UTF-8, corrupt) or hold a NUL:
              INVALID_ARGUMENT naming the field, before any handler
unimplemented placeholder services answering UNIMPLEMENTED with a reason (after the
              service's authentication, when it gives one)
channels      mTLS client channels with deadlines, retries and default metadata
metrics_http  Prometheus exposition on the metrics port
entrypoint    run_service() and the `ampmesh-service --service NAME` command
"""
