"""amp.yaml text the manifest tests share: a reference-style manifest that parses."""

from __future__ import annotations

import textwrap

# Two integrations, reads with schedules, backfill periods and field mappings, a write.
GOOD = textwrap.dedent(
    """\
    specVersion: 1.0.0
    integrations:
      - name: crm-sync
        displayName: CRM sync
        provider: hubspot
        module: crm
        proxy:
          enabled: true
        read:
          objects:
            - objectName: companies
              mapToName: company
              destination: crmWebhook
              schedule: "*/30 * * * *"
              backfill:
                defaultPeriod:
                  days: 90
              requiredFields:
                - fieldName: name
                  mapToName: company_name
                - mapToName: tier
                  mapToDisplayName: Customer tier
                  prompt: Which field stores the account tier?
                - fieldName: $['address']['city']
              optionalFieldsAuto: all
        write:
          objects:
            - objectName: companies
              inheritMapping: true
        subscribe:
          objects:
            - objectName: companies
              destination: crmWebhook
              inheritFieldsAndMapping: true
              updateEvent:
                enabled: always
                requiredWatchFields: [company_name, tier]
      - name: accounts
        provider: salesforce
        read:
          objects:
            - objectName: account
              destination: accountWebhook
              backfill:
                defaultPeriod:
                  fullHistory: true
    """
)
