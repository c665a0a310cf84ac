"""``pgstask serve``: the HTTP API and dashboard with uvicorn; ``pgstask tokens create``.

``serve`` binds 127.0.0.1:8000 by default. It refuses a non-loopback address unless
``PGSTASK_API_TOKENS`` holds at least one token. On loopback without tokens it makes one
read-write token for this run and prints it on stderr (paste it into the dashboard's sign-in
page, or send it as ``Authorization: Bearer``). ``--daemon`` also runs a daemon in the same
process: the README's first command, one process for a whole small installation.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import signal
import sys
import threading
from typing import TYPE_CHECKING

from pgstask.cli._app import EXIT_OK, Context
from pgstask.cli._options import Subparsers, add_common, add_runtime
from pgstask.errors import ConfigurationError

if TYPE_CHECKING:
    from pgstask.runtime.daemon import Daemon

_log = logging.getLogger("pgstask.cli")


def port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is between 1 and 65535, not {value}")
    return value


def register(commands: Subparsers) -> None:
    s = commands.add_parser(
        "serve",
        help="run the HTTP API and dashboard (and, with --daemon, a daemon)",
        description="Serve the HTTP API and the dashboard at /stask/ with uvicorn until "
        "SIGTERM/SIGINT. Tokens come from PGSTASK_API_TOKENS (`pgstask tokens create` makes "
        "one); without any, only a loopback address is allowed and a token for this run is "
        "printed. Host headers other than PGSTASK_API_ALLOWED_HOSTS (default: loopback names) "
        "are refused.",
    )
    add_common(s, top=False)
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    s.add_argument("--port", type=port, default=8000, help="port to bind (default 8000)")
    s.add_argument(
        "--daemon",
        action="store_true",
        help="also run a daemon in this process (all installed workers)",
    )
    add_runtime(s)
    s.set_defaults(handler=cmd_serve)

    t = commands.add_parser("tokens", help="make API tokens", description="Make API tokens.")
    add_common(t, top=False)
    sub = t.add_subparsers(dest="tokens_command", metavar="COMMAND", required=True)
    c = sub.add_parser(
        "create",
        help="print a new random token and the PGSTASK_API_TOKENS entries for it",
        description="Print a new random token (256 bits) and two ways to configure it: the "
        "token itself, or its SHA-256 so the secret is not stored where the server runs.",
    )
    c.add_argument("--read-only", action="store_true", help="a token that cannot change anything")
    c.set_defaults(handler=cmd_tokens_create)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def cmd_serve(ctx: Context) -> int:
    import uvicorn

    from pgstask.http import create_app
    from pgstask.http.auth import new_token, parse_tokens
    from pgstask.http.config import HttpSettings
    from pgstask.http.protocol import JsonH11Protocol

    host, listen_port = ctx.args.host, ctx.args.port
    http = HttpSettings.from_env()
    if not http.tokens:
        if not is_loopback(host):
            raise ConfigurationError(
                f"refusing to listen on {host} without a token: set PGSTASK_API_TOKENS "
                "(make one with `pgstask tokens create`), or bind 127.0.0.1"
            )
        token = new_token()
        http = http.replace(tokens=parse_tokens(f"rw:{token}"))
        sys.stderr.write(
            "pgstask: PGSTASK_API_TOKENS is not set; read-write token for this run:\n"
            f"    {token}\n"
            f"pgstask: sign in at http://{_url_host(host)}:{listen_port}/stask/login or send "
            "'Authorization: Bearer <token>'\n"
        )
    settings = ctx.settings.replace(dsn=ctx.ready_dsn())
    logging.getLogger("pgstask").setLevel(min(logging.getLogger().level, logging.INFO))
    daemon_thread = _start_daemon(ctx) if ctx.args.daemon else None
    app = create_app(settings, http)
    config = uvicorn.Config(app, host=host, port=listen_port, log_level="info", server_header=False)
    config.http = JsonH11Protocol  # malformed requests are answered as JSON too
    # uvicorn handles SIGTERM/SIGINT while it serves, then re-raises the signal to the handler
    # it found: make that one ours, so a graceful stop exits 0 (and a signal during the
    # daemon's grace period stops it at once) instead of dying by the signal.
    signals: list[int] = []

    def after_server(signum: int, frame: object) -> None:
        signals.append(signum)
        if daemon_thread is not None and len(signals) > 1:
            daemon_thread[0].request_stop()

    previous = {sig: signal.signal(sig, after_server) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        uvicorn.Server(config).run()
        if daemon_thread is not None:
            daemon, thread = daemon_thread
            daemon.request_stop()
            thread.join()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return EXIT_OK


def _start_daemon(ctx: Context) -> tuple[Daemon, threading.Thread]:
    from pgstask.cli.run import build_daemon

    daemon = build_daemon(ctx)

    def target() -> None:
        try:
            daemon.run()
        except Exception as exc:  # reported; the API keeps serving
            _log.error("the daemon stopped: %s", exc)

    thread = threading.Thread(target=target, name="pgstask-serve-daemon", daemon=True)
    thread.start()
    # Serve only once the daemon has registered its workers: the run endpoint checks them.
    while thread.is_alive() and daemon.producer is None:
        thread.join(0.05)
    return daemon, thread


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def cmd_tokens_create(ctx: Context) -> int:
    from pgstask.http.auth import digest, new_token

    token = new_token()
    scope = "ro" if ctx.args.read_only else "rw"
    ctx.out.write(
        f"{token}\n\n"
        f"Add to PGSTASK_API_TOKENS (comma-separated) either the token:\n"
        f"    {scope}:{token}\n"
        f"or its SHA-256, so the server never stores the secret:\n"
        f"    {scope}:sha256:{digest(token).hex()}\n"
    )
    return EXIT_OK
