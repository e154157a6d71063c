"""The provider sandbox: one process that plays the third-party SaaS providers.

It serves, over plain HTTP, an OAuth 2.0 authorization server (Authlib) and record APIs
shaped like HubSpot CRM v3 objects and Salesforce REST query, over deterministic seeded
data; and, over the mesh's gRPC, SandboxControlService to seed records, inject faults and
read counters. Everything lives in memory: a restart is a clean sandbox.
"""
