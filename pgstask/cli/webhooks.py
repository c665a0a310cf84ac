"""``pgstask webhooks …``: the registered webhooks that ``notify`` settings name.

``add NAME URL`` stores a webhook (or replaces the fields of the one of that name) and prints its
secret when it set one: a new webhook, ``--secret``, or ``--rotate-secret``. No other command
shows a secret. A bad field exits 2, an unknown webhook 4. docs/notifications.md says how
deliveries are made and signed.
"""

from __future__ import annotations

from pgstask.cli._app import EXIT_OK, Context
from pgstask.cli._options import Subparsers, add_command, add_common, add_json
from pgstask.cli._output import fields, print_json, table
from pgstask.webhooks import EVENTS


def register(commands: Subparsers) -> None:
    """Add the ``webhooks`` command and its commands to ``commands``."""
    group = commands.add_parser(
        "webhooks",
        help="list, show, add or remove webhooks (notification targets)",
        description="Look at and change the webhooks that workers' and tasks' notify settings "
        "name. `pgstask webhooks COMMAND --help` for each command.",
    )
    add_common(group, top=False)
    subcommands = group.add_subparsers(dest="webhooks_command", metavar="COMMAND", required=True)
    add_json(add_command(subcommands, "list", "every webhook, its URL and events", cmd_list))
    for name, text, handler in (
        ("show", "one webhook's fields, without its secret (exit 4 if none)", cmd_show),
        ("remove", "delete a webhook (deliveries queued for it fail)", cmd_remove),
    ):
        p = add_command(subcommands, name, text, handler)
        p.add_argument("name", metavar="NAME")
        add_json(p)
    p = add_command(
        subcommands,
        "add",
        "add a webhook, or replace the fields of the one of that name; prints a new secret once",
        cmd_add,
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument("url", metavar="URL", help="where deliveries are POSTed (http or https)")
    p.add_argument(
        "--events",
        metavar="LIST",
        help=f"comma-separated outcomes it takes: {', '.join(EVENTS)} (default: both)",
    )
    secret = p.add_mutually_exclusive_group()
    secret.add_argument(
        "--secret", metavar="TEXT", help="the signing secret (default: a new random one)"
    )
    secret.add_argument(
        "--rotate-secret", action="store_true", help="replace the secret with a new random one"
    )
    p.add_argument("--inactive", action="store_true", help="add it without deliveries")
    p.add_argument("--description", default="", metavar="TEXT", help="what it is for")
    add_json(p)


def cmd_list(ctx: Context) -> int:
    """``pgstask webhooks list``: every webhook with its URL, events and activity."""
    rows = ctx.client().webhooks()
    if ctx.args.json:
        print_json(rows, ctx.out)
        return EXIT_OK
    table(
        ["webhook", "url", "events", "active"],
        [[r["name"], r["url"], ", ".join(r["events"]), r["active"]] for r in rows],
        ctx.out,
        empty="no webhooks (`pgstask webhooks add NAME URL` adds one)",
    )
    return EXIT_OK


def cmd_show(ctx: Context) -> int:
    """``pgstask webhooks show NAME``: one webhook's fields."""
    row = ctx.client().webhook(ctx.args.name)
    if ctx.args.json:
        print_json(row, ctx.out)
        return EXIT_OK
    fields(
        [
            ("webhook", row["name"]),
            ("url", row["url"]),
            ("events", ", ".join(row["events"])),
            ("active", row["active"]),
            ("description", row["description"] or None),
            ("updated", row["updated_at"]),
        ],
        ctx.out,
    )
    return EXIT_OK


def cmd_add(ctx: Context) -> int:
    """``pgstask webhooks add NAME URL``: add or replace a webhook; its secret if it set one."""
    a = ctx.args
    events = None if a.events is None else [e.strip() for e in a.events.split(",") if e.strip()]
    row = ctx.client().add_webhook(
        a.name,
        a.url,
        events=events,
        secret=a.secret,
        rotate_secret=a.rotate_secret,
        active=not a.inactive,
        description=a.description,
    )
    if a.json:
        print_json(row, ctx.out)
        return EXIT_OK
    ctx.out.write(f"webhook {a.name} {'added' if row['inserted'] else 'replaced'}\n")
    if row["secret"] is not None:
        ctx.out.write(f"secret: {row['secret']}\n")
        ctx.note("the secret is shown this once: keep it where the receiver checks signatures")
    return EXIT_OK


def cmd_remove(ctx: Context) -> int:
    """``pgstask webhooks remove NAME``: delete the webhook."""
    ctx.client().remove_webhook(ctx.args.name)
    if ctx.args.json:
        print_json({"removed": ctx.args.name}, ctx.out)
    else:
        ctx.out.write(f"webhook {ctx.args.name} removed\n")
    return EXIT_OK
