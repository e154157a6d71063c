"""`ampmesh topology apply`: the event bus's topics, subscriptions and dead letters, as the
contracts declare them (services.runtime.pubsub_topology), made on Cloud Pub/Sub or on an
emulator.

    ampmesh topology apply [--project P] [--emulator-host H] [--dry-run] [--update]

Without an emulator host (--emulator-host, else AMPMESH_PUBSUB_EMULATOR_HOST, else
PUBSUB_EMULATOR_HOST) it talks to Cloud Pub/Sub with Application Default Credentials
(GOOGLE_APPLICATION_CREDENTIALS, workload identity, `gcloud auth application-default
login`); missing credentials exit 1 with one line saying what to set. The project is
--project, else AMPMESH_PUBSUB_PROJECT, else the credentials' own project.

Idempotent: one line per topic and subscription (`created`, `exists`, `differs`,
`updated`; `would create` under --dry-run, which changes nothing), then a summary. A
subscription that exists but differs from the contract (ack deadline, dead-letter policy,
retry backoff) is reported; --update brings it to the contract. On Cloud, the Pub/Sub
service agent needs publisher on each dead-letter topic and subscriber on each
subscription that dead-letters for messages to move: the output ends with those grants.
"""

from __future__ import annotations

import argparse
import os
from typing import TextIO

import google.auth
from google.api_core.exceptions import GoogleAPICallError, RetryError
from google.auth.exceptions import DefaultCredentialsError

from services.runtime.pubsub_topology import (
    AdminClients,
    Topology,
    TopologyReport,
    reconcile,
    topology,
)

EXIT_OK, EXIT_FAILED = 0, 1

_CREDENTIALS_HELP = (
    "no Google Cloud credentials for Cloud Pub/Sub: set GOOGLE_APPLICATION_CREDENTIALS to a "
    "service account key file, run with workload identity, or `gcloud auth "
    "application-default login`; for an emulator pass --emulator-host or set "
    "AMPMESH_PUBSUB_EMULATOR_HOST"
)


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "topology", help="the Pub/Sub topics and subscriptions the contracts declare"
    )
    actions = parser.add_subparsers(dest="topology_command", required=True)
    apply = actions.add_parser(
        "apply",
        help="create what is missing on Cloud Pub/Sub (or an emulator); report what exists",
    )
    apply.add_argument(
        "--project", help="the Google Cloud project (default $AMPMESH_PUBSUB_PROJECT)"
    )
    apply.add_argument(
        "--emulator-host",
        help="host:port of a Pub/Sub emulator (default $AMPMESH_PUBSUB_EMULATOR_HOST); "
        "unset: Cloud Pub/Sub",
    )
    apply.add_argument("--dry-run", action="store_true", help="look and report; change nothing")
    apply.add_argument(
        "--update",
        action="store_true",
        help="bring existing subscriptions that differ to the contract's settings",
    )


def emulator_host(flag: str | None, environ: dict[str, str] | os._Environ[str]) -> str:
    return (
        flag
        or environ.get("AMPMESH_PUBSUB_EMULATOR_HOST", "")
        or environ.get("PUBSUB_EMULATOR_HOST", "")
    )


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """`ampmesh topology apply`; the exit code."""
    host = emulator_host(args.emulator_host, os.environ)
    project = args.project or os.environ.get("AMPMESH_PUBSUB_PROJECT", "")
    try:
        if host:
            clients = AdminClients.emulator(host)
            where = f"the Pub/Sub emulator at {host}"
        else:
            if not project:
                _, project = google.auth.default()
            clients = AdminClients.cloud()
            where = "Cloud Pub/Sub"
    except DefaultCredentialsError as error:
        print(f"{_CREDENTIALS_HELP} ({_first_line(error)})", file=err)
        return EXIT_FAILED
    if not project:
        why = "" if host else " (the credentials name none)"
        print(f"no Pub/Sub project: pass --project or set AMPMESH_PUBSUB_PROJECT{why}", file=err)
        clients.close()
        return EXIT_FAILED
    layout = topology(project)
    dry = " (dry run: nothing changes)" if args.dry_run else ""
    print(f"project {project} on {where}{dry}", file=out)
    try:
        with clients:
            report = reconcile(clients, layout, dry_run=args.dry_run, update=args.update)
    except DefaultCredentialsError as error:
        print(f"{_CREDENTIALS_HELP} ({_first_line(error)})", file=err)
        return EXIT_FAILED
    except (GoogleAPICallError, RetryError) as error:
        print(f"Pub/Sub refused or did not answer: {_first_line(error)}", file=err)
        return EXIT_FAILED
    _print_report(report, args, out)
    if not host:
        _print_grants(layout, out)
    return EXIT_OK


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _print_report(report: TopologyReport, args: argparse.Namespace, out: TextIO) -> None:
    made = "would create" if args.dry_run else "created"
    for topic in report.created_topics:
        print(f"{made:<12} topic        {topic}", file=out)
    for topic in report.existing_topics:
        print(f"{'exists':<12} topic        {topic}", file=out)
    for name in report.created_subscriptions:
        print(f"{made:<12} subscription {name}", file=out)
    for name in report.existing_subscriptions:
        if name in report.updated:
            state = "updated"
        elif name in report.differing:
            state = "differs"
        else:
            state = "exists"
        detail = "; ".join(report.differing.get(name, ()))
        print(f"{state:<12} subscription {name}{': ' + detail if detail else ''}", file=out)
    left = len(report.differing) - len(report.updated)
    hint = " (--update changes them)" if left and not args.update else ""
    print(
        f"{made} {report.created}, existed "
        f"{len(report.existing_topics) + len(report.existing_subscriptions)}, "
        f"differ {left}{hint}, updated {len(report.updated)}",
        file=out,
    )


def _print_grants(layout: Topology, out: TextIO) -> None:
    """The IAM grants dead-lettering needs on Cloud Pub/Sub (not applied here)."""
    agent = "serviceAccount:service-PROJECT_NUMBER@gcp-sa-pubsub.iam.gserviceaccount.com"
    print(
        "dead-lettering needs the Pub/Sub service agent "
        f"({agent}; PROJECT_NUMBER from `gcloud projects describe {layout.project}`) to hold:",
        file=out,
    )
    for subscription in layout.subscriptions:
        if subscription.dead_letter_topic is None:
            continue
        print(
            f"  gcloud pubsub topics add-iam-policy-binding {subscription.dead_letter_topic} "
            f"--project {layout.project} --member {agent} --role roles/pubsub.publisher",
            file=out,
        )
        print(
            f"  gcloud pubsub subscriptions add-iam-policy-binding {subscription.name} "
            f"--project {layout.project} --member {agent} --role roles/pubsub.subscriber",
            file=out,
        )
