"""``pgstask serve``: the HTTP API and dashboard with uvicorn; ``pgstask tokens create``.

``serve`` binds 127.0.0.1:8000 by default. It refuses a non-loopback address unless
``PGSTASK_API_TOKENS`` holds at least one token. On loopback without tokens it uses a read-write
development token kept in ``.pgstask/serve-token`` (made on the first start, mode 0600) and
prints it with a sign-in link. ``--daemon`` also runs a daemon in the same process: the README's
first command, one process for a whole small installation.

It fails at start, with exit 3, when the database cannot be used or its schema is not this
pgstask's (with or without ``--daemon``), rather than answering 503 to every request. After
SIGTERM/SIGINT it stops uvicorn, then the daemon, and says what it waits for and what it did.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import re
import signal
import threading
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from pgstask.cli._app import EXIT_OK, Context
from pgstask.cli._options import Subparsers, add_common, add_runtime
from pgstask.cli._output import plural
from pgstask.db import translate_errors
from pgstask.errors import ConfigurationError, SchemaError

if TYPE_CHECKING:
    from pgstask.runtime.daemon import Daemon

_log = logging.getLogger("pgstask.cli")

#: Where ``serve`` keeps the token it makes when ``PGSTASK_API_TOKENS`` is not set (relative to
#: the working directory, beside the embedded database's default ``.pgstask/pgdata``).
TOKEN_FILE = ".pgstask/serve-token"
_TOKEN_TEXT = re.compile(r"[A-Za-z0-9_\-]+")  # what new_token() makes


def port(text: str) -> int:
    """An argparse type: a TCP port, 1 to 65535 (``serve --port``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is between 1 and 65535, not {value}")
    return value


def register(commands: Subparsers) -> None:
    """Add the ``serve`` and ``tokens create`` commands to ``commands``."""
    s = commands.add_parser(
        "serve",
        help="run the HTTP API and dashboard (and, with --daemon, a daemon)",
        description="Serve the HTTP API and the dashboard at /stask/ with uvicorn until "
        "SIGTERM/SIGINT. Tokens come from PGSTASK_API_TOKENS (`pgstask tokens create` makes "
        "one); without any, only a loopback address is allowed, and a development token kept "
        "in .pgstask/serve-token is used and printed with a sign-in link. Host headers other "
        "than PGSTASK_API_ALLOWED_HOSTS (default: loopback names) are refused. Exit 3 if the "
        "database cannot be used or its schema is not current.",
    )
    add_common(s, top=False)
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    s.add_argument("--port", type=port, default=8000, help="port to bind (default 8000)")
    s.add_argument(
        "--daemon",
        action="store_true",
        help="also run a daemon in this process (all installed workers)",
    )
    s.add_argument(
        "--forwarded-allow-ips",
        metavar="IP[,IP]",
        help="believe X-Forwarded-For/-Proto only from these proxies (addresses or networks; "
        "overrides PGSTASK_API_FORWARDED_ALLOW_IPS; default: from nobody)",
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
    """Whether ``host`` is ``localhost`` or a loopback address (IPv6 with or without
    brackets): where ``serve`` may listen without a token."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def cmd_serve(ctx: Context) -> int:
    """``pgstask serve``: the HTTP API and dashboard with uvicorn (and, with ``--daemon``, a
    daemon in the same process) until SIGTERM/SIGINT."""
    import uvicorn

    from pgstask.http import create_app
    from pgstask.http.auth import parse_tokens
    from pgstask.http.config import HttpSettings, parse_proxies
    from pgstask.http.server import uvicorn_config

    host, listen_port = ctx.args.host, ctx.args.port
    http = HttpSettings.from_env().replace(cookie=f"pgstask_token_{listen_port}")
    if ctx.args.forwarded_allow_ips is not None:
        proxies = parse_proxies(ctx.args.forwarded_allow_ips, "--forwarded-allow-ips")
        http = http.replace(forwarded_allow_ips=proxies)
    token = None
    if not http.tokens:
        if not is_loopback(host):
            raise ConfigurationError(
                f"refusing to listen on {host} without a token: set PGSTASK_API_TOKENS "
                "(make one with `pgstask tokens create`), or bind 127.0.0.1"
            )
        token = _development_token(ctx)
        http = http.replace(tokens=parse_tokens(f"rw:{token}"))
    settings = ctx.settings.replace(dsn=ctx.ready_dsn())
    _check_database(settings.dsn or "")
    logging.getLogger("pgstask").setLevel(min(logging.getLogger().level, logging.INFO))
    daemon_thread = _start_daemon(ctx) if ctx.args.daemon else None
    if token is not None:
        ctx.note(
            f"sign in at http://{_url_host(host)}:{listen_port}/stask/login#token={token} "
            "or send 'Authorization: Bearer <token>'"
        )
    app = create_app(settings, http)
    server = uvicorn.Server(uvicorn_config(app, host=host, port=listen_port, http=http))
    # uvicorn handles SIGTERM/SIGINT while it serves, then re-raises the signal to the handler
    # it found: make that one ours, so a graceful stop exits 0 (and a signal during the
    # daemon's grace period stops it at once) instead of dying by the signal.
    signals: list[int] = []

    def after_server(signum: int, frame: object) -> None:
        signals.append(signum)
        if daemon_thread is not None and len(signals) > 1:
            daemon_thread[0].request_stop()
            ctx.note("stopping now: unfinished tasks are given back")

    previous = {sig: signal.signal(sig, after_server) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.run()
    except SystemExit:  # uvicorn could not start (e.g. the port is taken) and logged why
        raise ConfigurationError(
            f"could not serve on {_url_host(host)}:{listen_port} (see the error above)"
        ) from None
    finally:
        try:
            if daemon_thread is not None:
                _stop_daemon(ctx, *daemon_thread, at_once=len(signals) > 1)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    return EXIT_OK


def _check_database(dsn: str) -> None:
    """Fail at start, not with a 503 on every request: the database must answer (right
    password, reachable) and have this pgstask's schema."""
    from pgstask import migrate

    head, current = migrate.head_revision(), migrate.current_revision(dsn)
    if current != head:
        raise SchemaError(
            f"the database schema is at revision {current or 'none'}, this pgstask needs "
            f"{head}: run `pgstask migrate`"
        )


def _development_token(ctx: Context) -> str:
    """The read-write token of a server without ``PGSTASK_API_TOKENS``: the one kept in
    ``.pgstask/serve-token`` of the working directory (mode 0600), made there on the first
    start, so that a restart does not sign the dashboard out."""
    from pgstask.http.auth import new_token

    path = Path(TOKEN_FILE)
    try:
        token, made = read_or_make_token(path)
    except OSError as exc:
        token = new_token()
        ctx.note(
            f"PGSTASK_API_TOKENS is not set and {path} cannot be used ({exc.strerror}); "
            "read-write token for this run:"
        )
    else:
        how = "made a read-write token and kept it" if made else "using the read-write token"
        ctx.note(f"PGSTASK_API_TOKENS is not set; {how} in {path}:")
    ctx.err.write(f"    {token}\n")
    return token


def read_or_make_token(path: Path) -> tuple[str, bool]:
    """The token kept in ``path`` and False, or a new one written there (mode 0600) and True.
    A file that does not hold a usable token is replaced; one that others may read is made
    private first. Of two servers starting at once, the first to write wins and the other
    reads its token."""
    from pgstask.http.auth import MIN_SECRET_LENGTH, new_token

    existed = path.exists()
    if existed:
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)
        kept = path.read_text(encoding="utf-8", errors="replace").strip()
        if len(kept) >= MIN_SECRET_LENGTH and _TOKEN_TEXT.fullmatch(kept):
            return kept, False
    token = new_token()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(token + "\n")
        if existed:
            os.replace(temporary, path)
        else:
            try:
                os.link(temporary, path)  # fails if another server made it meanwhile
            except FileExistsError:
                return read_or_make_token(path)
    finally:
        temporary.unlink(missing_ok=True)
    return token, True


def _start_daemon(ctx: Context) -> tuple[Daemon, threading.Thread]:
    """Start the daemon in a thread; return once it has registered its workers (the run
    endpoint checks them). A daemon that cannot start (database, schema) is an error here:
    its exception is raised in this thread, so ``serve`` exits as ``pgstask daemon`` would."""
    from pgstask.cli.run import build_daemon

    daemon = build_daemon(ctx)
    failed: list[BaseException] = []

    def target() -> None:
        try:
            daemon.run()
        except Exception as exc:
            if daemon.producer is None:
                failed.append(exc)  # raised by _start_daemon
            else:  # reported; the API keeps serving
                _log.error("the daemon stopped: %s", exc)

    thread = threading.Thread(target=target, name="pgstask-serve-daemon", daemon=True)
    thread.start()
    while thread.is_alive() and daemon.producer is None:
        thread.join(0.05)
    if failed:
        with translate_errors():
            raise failed[0]
    return daemon, thread


def _stop_daemon(ctx: Context, daemon: Daemon, thread: threading.Thread, *, at_once: bool) -> None:
    """Stop the daemon gracefully (``at_once``: a second signal came already), saying what it
    waits for and what it did."""
    from pgstask.runtime.runner import OutcomeKind

    slots = daemon.slots
    running = slots.busy if slots is not None else 0
    before = Counter(daemon.summary.outcomes)
    daemon.request_stop()
    if running and not at_once:
        ctx.note(
            f"stopping: waiting up to {daemon.settings.shutdown_grace:g} s for "
            f"{plural(running, 'running task')}; press Ctrl-C again to stop now"
        )
    thread.join()
    if running:
        done = Counter(daemon.summary.outcomes)
        done.subtract(before)
        parts = [
            f"{done[kind.value]} {kind.value.replace('_', ' ')}"
            for kind in (
                OutcomeKind.COMPLETED,
                OutcomeKind.FAILED,
                OutcomeKind.SNOOZED,
                OutcomeKind.GIVEN_BACK,
                OutcomeKind.DROPPED,
            )
            if done[kind.value] > 0
        ]
        ctx.note(f"stopped: {', '.join(parts) or 'nothing left to do'}")
    else:
        ctx.note("stopped: no task was running")


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def cmd_tokens_create(ctx: Context) -> int:
    """``pgstask tokens create``: print a new random token and the ``PGSTASK_API_TOKENS``
    entries for it."""
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
