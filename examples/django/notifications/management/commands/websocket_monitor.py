"""manage.py websocket_monitor: who is connected, from Switchboard's admin
interface, in sbctl's tables (sbctl cluster, users, connections)."""

import json

from django.core.management.base import BaseCommand, CommandError

from switchboard import SwitchboardError
from switchboard.django import admin_client


def table(headers, rows):
    rows = [[("-" if v is None else str(v)) for v in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]
    lines = [headers] + rows
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip()
                     for line in lines)


class Command(BaseCommand):
    help = "Connection stats of the Switchboard cluster (its admin interface)."

    def add_arguments(self, parser):
        parser.add_argument("--sort", choices=["queue", "age"], default="queue",
                            help="connections with the most queued bytes (queue) or oldest (age) first")
        parser.add_argument("--limit", type=int, default=10, help="connections listed")
        parser.add_argument("--json", action="store_true", help="the admin answers as JSON")

    def handle(self, *args, sort, limit, **options):
        admin = admin_client()
        try:
            cluster = admin.cluster()
            users = admin.users()
            conns = admin.connections(sort=sort, limit=limit)
        except SwitchboardError as e:
            raise CommandError(f"switchboard: {e}")
        finally:
            admin.close()
        if options["json"]:
            self.stdout.write(json.dumps({"cluster": cluster, "users": users,
                                          "connections": conns}, indent=2))
            return
        members = cluster["members"]
        self.stdout.write(table(
            ["NODE", "STATE", "ADDRESS", "UPTIME_S", "CONNECTIONS", "CHANNELS", "OWNED"],
            [[m["node"] + (" *" if m["self"] else ""), m["state"], m["address"], m["uptime_s"],
              m["connections"], m["channels"], m["owned"]] for m in members]))
        total = sum(m["connections"] or 0 for m in members)
        self.stdout.write(f"\n{total} connection(s), {len(users['users'])} user(s)\n")
        self.stdout.write(table(
            ["USER", "CONNECTIONS", "BY NODE"],
            [[u["user_id"], u["connections"],
              " ".join(f"{n['node']}={n['connections']}" for n in u["nodes"])]
             for u in users["users"]]))
        self.stdout.write(f"\nconnections ({'most queued' if sort == 'queue' else 'oldest'} "
                          f"first, at most {limit}):")
        self.stdout.write(table(
            ["NODE", "ID", "USER", "ROUTE", "AGE_S", "QUEUED_BYTES", "CHANNELS"],
            [[c["node"], c["id"], c["user_id"], c["route"], c["age_s"], c["queued_bytes"],
              ",".join(c["channels"])] for c in conns["connections"]]))
        unreachable = set(cluster.get("unreachable", [])) | set(users.get("unreachable", []))
        if unreachable:
            self.stdout.write(f"\nunreachable: {' '.join(sorted(unreachable))}")
