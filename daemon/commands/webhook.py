"""`scanwatch webhook setup|status REGISTRY`: Harbor's webhook policies for the fast path.

``setup`` creates or updates the scanwatch policy in each project the registry watches (or those
``--project`` names), idempotently; ``--dry-run`` shows what it would change and writes nothing.
``status`` lists each project's policies with Harbor's recent delivery executions, failures
first in mind: a hook that stopped working shows here before anyone misses an alert.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from daemon.commands._common import add_format, print_json, print_table
from daemon.commands._harbor import load_config
from daemon.errors import UsageError

HELP = "set up Harbor's webhook policies for the fast path, and show their deliveries"


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "webhook", parents=[common], help=HELP, description=HELP + ".",
        epilog="The policy sends PUSH_ARTIFACT and SCANNING_* events to URL (the daemon's "
               "listener, path /hooks/harbor/REGISTRY) with the registry's webhook_secret as "
               "its Authorization header. It needs project admin rights in Harbor.")
    sub = p.add_subparsers(title="actions", metavar="ACTION", required=True)
    setup = sub.add_parser("setup", parents=[common], help="create or update the policy in "
                           "each project (idempotent)",
                           description="Create or update the scanwatch webhook policy in each "
                           "project the registry watches; run again, it changes nothing.")
    setup.add_argument("registry", metavar="REGISTRY")
    setup.add_argument("--url", required=True,
                       help="where Harbor posts events, e.g. "
                            "https://scanwatch.example.com:9468/hooks/harbor/REGISTRY")
    setup.add_argument("--project", action="append", metavar="GLOB",
                       help="only projects matching GLOB (repeatable; default: the registry's "
                            "projects)")
    setup.add_argument("--dry-run", action="store_true",
                       help="show what would be created or updated; change nothing")
    setup.add_argument("--skip-cert-verify", action="store_true",
                       help="let Harbor post to a URL whose TLS certificate it cannot verify")
    add_format(setup)
    setup.set_defaults(handler=run_setup)
    status = sub.add_parser("status", parents=[common], help="list the policies and their "
                            "recent deliveries", description="List each project's webhook "
                            "policies and Harbor's recent delivery executions (Harbor >= 2.8).")
    status.add_argument("registry", metavar="REGISTRY")
    status.add_argument("--project", action="append", metavar="GLOB",
                        help="only projects matching GLOB (repeatable)")
    status.add_argument("--last", type=int, default=5, metavar="N",
                        help="executions per policy (default: 5)")
    add_format(status)
    status.set_defaults(handler=run_status)


def _registry(cfg: Any, name: str) -> Any:
    registry = cfg.registry(name)
    if registry is None:
        known = ", ".join(r.name for r in cfg.registries) or "none configured"
        raise UsageError(f"webhook: unknown registry {name!r} (known: {known})")
    return registry


async def _projects(client: Any, registry: Any, globs: list[str] | None) -> list[str]:
    from fnmatch import fnmatchcase

    from daemon.harbor.inventory import matches

    names = [p.name for p in await client.projects()
             if matches(p.name, registry.projects, registry.exclude_projects)]
    if globs:
        names = [n for n in names if any(fnmatchcase(n, g) for g in globs)]
    return sorted(names)


def run_setup(args: argparse.Namespace) -> int:
    import asyncio

    cfg = load_config(args, sends=False)
    registry = _registry(cfg, args.registry)
    secret = registry.webhook_secret
    if secret is None or not secret.present:
        raise UsageError(f"registry[{registry.name}].webhook_secret: not set (or its variable "
                         "or file is missing); the policy's Authorization header is that secret")
    if not args.url.startswith(("http://", "https://")):
        raise UsageError(f"webhook setup: --url {args.url!r} is not an http(s) URL")
    if not args.url.rstrip("/").endswith(f"/hooks/harbor/{registry.name}"):
        print(f"scanwatch: warning: --url does not end in /hooks/harbor/{registry.name}, the "
              "daemon's path for this registry (fine behind a proxy that maps it)",
              file=sys.stderr)
    plans = asyncio.run(_setup(registry, args, secret.reveal()))
    rows = [{"project": p.project, "action": p.action, "policy_id": p.policy_id or None,
             "changes": list(p.changes), "applied": not args.dry_run and p.action != "none"}
            for p in plans]
    if args.format == "json":
        print_json(rows)
        return 0
    verb = {"create": "would create" if args.dry_run else "created",
            "update": "would update" if args.dry_run else "updated", "none": "up to date"}
    print_table(("PROJECT", "POLICY", "WHY"),
                [(r["project"], verb[r["action"]], "; ".join(r["changes"])) for r in rows],
                empty=f"no project of registry {registry.name} matches")
    return 0


async def _setup(registry: Any, args: argparse.Namespace, secret: str) -> list[Any]:
    from daemon.harbor import hookpolicy
    from daemon.harbor.client import HarborClient

    body = hookpolicy.wanted_body(args.url, secret, skip_cert_verify=args.skip_cert_verify)
    plans = []
    async with HarborClient(registry) as client:
        await client.system_info()
        for project in await _projects(client, registry, args.project):
            policies = [hookpolicy.policy(b) for b in await client.webhook_policies(project)]
            plan = hookpolicy.plan(project, policies, args.url, secret,
                                   skip_cert_verify=args.skip_cert_verify)
            if not args.dry_run and plan.action == "create":
                await client.create_webhook_policy(project, body)
            elif not args.dry_run and plan.action == "update":
                await client.update_webhook_policy(project, plan.policy_id, body)
            plans.append(plan)
    return plans


def run_status(args: argparse.Namespace) -> int:
    import asyncio

    cfg = load_config(args, sends=False)
    registry = _registry(cfg, args.registry)
    rows = asyncio.run(_status(registry, args))
    if args.format == "json":
        print_json(rows)
        return 0
    lines = []
    for r in rows:
        recent = r["executions"]
        failed = [e for e in recent if e["status"] not in ("Success", "Running", "Pending")]
        last = recent[0] if recent else None
        summary = (f"{len(failed)} of last {len(recent)} failed" if recent else
                   r["executions_note"] or "no deliveries yet")
        when = (last["started"] or "")[:19].replace("T", " ") if last else ""
        detail = f"{last['status']} {last['event_type']} {when}" if last else ""
        if failed:
            detail += f"; last failure: {failed[0]['message'] or failed[0]['status']}"
        lines.append((r["project"], r["policy"], "yes" if r["enabled"] else "NO",
                      r["address"], summary, detail))
    print_table(("PROJECT", "POLICY", "ENABLED", "ADDRESS", "DELIVERIES", "LAST"), lines,
                empty=f"no webhook policy in the projects of registry {registry.name} "
                      f"(see `scanwatch webhook setup {registry.name} --url URL`)")
    return 0


async def _status(registry: Any, args: argparse.Namespace) -> list[dict[str, Any]]:
    from daemon.errors import NotFound
    from daemon.harbor import hookpolicy
    from daemon.harbor.client import HarborClient

    rows: list[dict[str, Any]] = []
    async with HarborClient(registry) as client:
        await client.system_info()
        for project in await _projects(client, registry, args.project):
            for policy in map(hookpolicy.policy, await client.webhook_policies(project)):
                note = ""
                try:
                    raw = await client.webhook_executions(project, policy.id, args.last)
                except NotFound:
                    raw, note = [], "executions need Harbor >= 2.8"
                executions = [hookpolicy.execution(e) for e in raw][:args.last]
                rows.append({
                    "project": project, "policy": policy.name, "id": policy.id,
                    "enabled": policy.enabled, "event_types": list(policy.event_types),
                    "address": ", ".join(t.address for t in policy.targets),
                    "executions_note": note,
                    "executions": [{"id": e.id, "status": e.status, "event_type": e.event_type,
                                    "started": e.started.isoformat() if e.started else None,
                                    "message": e.message} for e in executions]})
    return rows
