"""``docker-compose.yml`` and ``Dockerfile``: the stack that the README's compose section starts.

How the compose file is checked, strongest first, with whatever this machine has:

1. A compose implementation on PATH, ``docker compose`` (the v2 plugin) or ``docker-compose``
   (v1): ``config --quiet`` must succeed. That validation is client-side only; no Docker engine
   is needed. With the v2 plugin the structural checks below read its normalised model
   (``config --format json``), so they see the file exactly as compose does.
2. Otherwise the file is parsed here: by PyYAML when it happens to be importable (pgstask does
   not depend on it, and no dependency is added for this test), else by ``parse_yaml`` below, a
   strict parser for exactly the YAML subset the file is written in (block mappings, block lists,
   flow lists of scalars, plain and quoted scalars, comments). It rejects anything else (anchors,
   tabs, duplicate keys, bad indentation), so a file it accepts means what the checks assume.

The structural checks (the four services, their images, dependencies and conditions, commands
that pgstask's own argument parser accepts, DSNs that match the database the ``postgres`` service
creates, the healthcheck, the volumes, and a Dockerfile whose copies exist and whose entry point
is pgstask's console script) run in every case. No test here skips: a machine with the
``docker`` client but no compose plugin (as where this was written) still checks everything but
the compose implementation's own validation.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DSN = "postgresql://postgres:postgres@postgres:5432/pgstask"
SERVICES = {"postgres", "migrate", "daemon-1", "daemon-2", "api"}


# --- finding a compose implementation -------------------------------------------------------


def compose_command() -> list[str] | None:
    """``docker compose`` or ``docker-compose`` if one of them answers ``version``."""
    candidates: list[list[str]] = []
    if shutil.which("docker"):
        candidates.append(["docker", "compose"])
    if shutil.which("docker-compose"):
        candidates.append(["docker-compose"])
    for command in candidates:
        try:
            probe = subprocess.run(
                [*command, "version"], capture_output=True, text=True, timeout=30, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.returncode == 0:
            return command
    return None


def run_compose(command: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*command, "-f", str(COMPOSE_FILE), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )


# --- a strict parser for the YAML subset of the compose file --------------------------------


class YamlSubsetError(ValueError):
    pass


_KEY = re.compile(r"""^(?P<key>"[^"]*"|'[^']*'|[A-Za-z0-9_.-]+):(?:\s+(?P<value>.*))?$""")


def _strip_comment(text: str) -> str:
    quote: str | None = None
    for i, char in enumerate(text):
        if quote:
            if char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif char == "#" and (i == 0 or text[i - 1] == " "):
            return text[:i].rstrip()
    if quote:
        raise YamlSubsetError(f"unterminated quote in {text!r}")
    return text.rstrip()


def _scalar(text: str) -> Any:
    if text[:1] in "&*!|>{":
        raise YamlSubsetError(f"unsupported YAML syntax: {text!r}")
    if text.startswith("["):
        if not text.endswith("]"):
            raise YamlSubsetError(f"unterminated flow list: {text!r}")
        inner = text[1:-1].strip()
        if not inner:
            return []
        items = re.findall(r"""\s*("[^"]*"|'[^']*'|[^,"'\[\]{}]+)\s*(?:,|$)""", inner)
        if ",".join(items).replace(" ", "") != inner.replace(" ", ""):
            raise YamlSubsetError(f"unsupported flow list: {text!r}")
        return [_scalar(item.strip()) for item in items]
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        if "\\" in text:
            raise YamlSubsetError(f"escapes are not supported: {text!r}")
        return text[1:-1]
    if text in ("null", "~"):
        return None
    if text in ("true", "false"):
        return text == "true"
    if text.lower() in ("yes", "no", "on", "off", "y", "n"):
        raise YamlSubsetError(f"{text!r} means a boolean to some YAML parsers; quote it")
    if re.fullmatch(r"-?[0-9]+", text):
        return int(text)
    return text


def parse_yaml(source: str) -> Any:
    """Parse the block-style YAML subset described in the module docstring."""
    lines: list[tuple[int, str]] = []
    for number, raw in enumerate(source.splitlines(), 1):
        if "\t" in raw[: len(raw) - len(raw.lstrip())]:
            raise YamlSubsetError(f"line {number}: tab in indentation")
        text = _strip_comment(raw)
        if text.strip():
            lines.append((len(text) - len(text.lstrip(" ")), text.strip()))

    def block(i: int, indent: int) -> tuple[Any, int]:
        if lines[i][1].startswith("- ") or lines[i][1] == "-":
            return sequence(i, indent)
        return mapping(i, indent)

    def nested(i: int, indent: int) -> tuple[Any, int]:
        if i < len(lines) and lines[i][0] > indent:
            return block(i, lines[i][0])
        return None, i

    def sequence(i: int, indent: int) -> tuple[list[Any], int]:
        items: list[Any] = []
        while i < len(lines) and lines[i][0] == indent and lines[i][1].startswith("-"):
            text = lines[i][1][1:].strip()
            if _KEY.match(text):
                raise YamlSubsetError(f"mappings inside list items are not supported: {text!r}")
            if text:
                items.append(_scalar(text))
                i += 1
            else:
                value, i = nested(i + 1, indent)
                items.append(value)
        return items, i

    def mapping(i: int, indent: int) -> tuple[dict[str, Any], int]:
        out: dict[str, Any] = {}
        while i < len(lines) and lines[i][0] == indent:
            match = _KEY.match(lines[i][1])
            if not match:
                raise YamlSubsetError(f"expected 'key: value', got {lines[i][1]!r}")
            key = match["key"].strip("\"'")
            if key in out:
                raise YamlSubsetError(f"duplicate key {key!r}")
            if match["value"]:
                out[key] = _scalar(match["value"])
                i += 1
            else:
                out[key], i = nested(i + 1, indent)
        return out, i

    if not lines:
        return None
    value, end = block(0, lines[0][0])
    if end != len(lines):
        raise YamlSubsetError(f"unexpected indentation at {lines[end][1]!r}")
    return value


def parse_with_yaml_library(source: str) -> Any | None:
    """PyYAML's reading of ``source``, or None when PyYAML is not installed."""
    try:
        import yaml  # type: ignore[import-untyped, import-not-found, unused-ignore]
    except ImportError:
        return None
    return yaml.safe_load(source)


# --- the model the structural checks read ---------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> list[str] | None:
    return compose_command()


@pytest.fixture(scope="module")
def model(compose: list[str] | None) -> dict[str, Any]:
    """The compose model: compose v2's normalised JSON, else the parsed file."""
    if compose == ["docker", "compose"]:
        result = run_compose(compose, "config", "--format", "json")
        assert result.returncode == 0, result.stderr
        data = json.loads(result.stdout)
    else:
        source = COMPOSE_FILE.read_text(encoding="utf-8")
        data = parse_with_yaml_library(source)
        if data is None:
            data = parse_yaml(source)
    assert isinstance(data, dict)
    return data


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    """``{dependency: condition}`` from the short (list) or long (mapping) form."""
    raw = service.get("depends_on") or {}
    if isinstance(raw, list):
        return dict.fromkeys(raw, "service_started")
    return {name: spec.get("condition", "service_started") for name, spec in raw.items()}


def environment(service: dict[str, Any]) -> dict[str, str]:
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        return dict(item.split("=", 1) for item in raw)
    return {k: str(v) for k, v in raw.items()}


def command(service: dict[str, Any]) -> list[str]:
    raw = service.get("command")
    return raw.split() if isinstance(raw, str) else list(raw or [])


def volumes(service: dict[str, Any]) -> dict[str, str]:
    """``{target: source}`` from short (``src:dst``) or long (mapping) volume entries."""
    out: dict[str, str] = {}
    for entry in service.get("volumes") or []:
        if isinstance(entry, str):
            source, target = entry.split(":")[:2]
            out[target] = source
        else:
            out[entry["target"]] = entry["source"]
    return out


def build_context(service: dict[str, Any]) -> Path:
    raw = service["build"]
    context = raw if isinstance(raw, str) else raw.get("context", ".")
    return (ROOT / context).resolve()


# --- the tests ------------------------------------------------------------------------------


def test_compose_implementation_accepts_the_file(compose: list[str] | None) -> None:
    """With a compose implementation, its own validation; without one, the strict parse (and
    PyYAML's, when present, which must agree with it)."""
    source = COMPOSE_FILE.read_text(encoding="utf-8")
    ours = parse_yaml(source)
    library = parse_with_yaml_library(source)
    if library is not None:
        assert ours == library
    if compose is not None:
        result = run_compose(compose, "config", "--quiet")
        assert result.returncode == 0, result.stderr
    assert isinstance(ours, dict) and set(ours) == {"services", "volumes"}


def test_the_five_services_and_their_order(model: dict[str, Any]) -> None:
    services = model["services"]
    assert set(services) == SERVICES
    assert depends_on(services["postgres"]) == {}
    assert depends_on(services["migrate"]) == {"postgres": "service_healthy"}
    for name in ("daemon-1", "daemon-2", "api"):
        assert depends_on(services[name]) == {"migrate": "service_completed_successfully"}


def test_postgres_is_16_with_a_healthcheck_and_a_volume(model: dict[str, Any]) -> None:
    postgres = model["services"]["postgres"]
    assert postgres["image"] == "postgres:16"
    test = postgres["healthcheck"]["test"]
    assert "pg_isready" in (test if isinstance(test, str) else " ".join(test))
    assert volumes(postgres).get("/var/lib/postgresql/data") == "pgdata"
    assert "pgdata" in model["volumes"]


def test_pgstask_services_run_migrate_and_daemon_against_that_database(
    model: dict[str, Any],
) -> None:
    services = model["services"]
    env = environment(services["postgres"])
    expected = (
        f"postgresql://{env['POSTGRES_USER']}:{env['POSTGRES_PASSWORD']}"
        f"@postgres:5432/{env['POSTGRES_DB']}"
    )
    assert expected == DSN
    assert command(services["migrate"]) == ["migrate"]
    assert command(services["daemon-1"]) == ["daemon"]
    assert command(services["daemon-2"]) == ["daemon"]
    assert command(services["api"])[0] == "serve"
    for name in ("migrate", "daemon-1", "daemon-2", "api"):
        service = services[name]
        assert environment(service)["PGSTASK_DSN"] == DSN
        assert build_context(service) == ROOT
        assert (build_context(service) / "Dockerfile").is_file()
        assert service["image"] == services["migrate"]["image"]
    assert str(services["migrate"].get("restart", "no")) == "no"


def test_the_services_run_real_pgstask_commands(model: dict[str, Any]) -> None:
    from pgstask.cli import build_parser

    parser = build_parser()
    for name in ("migrate", "daemon-1", "daemon-2", "api"):
        args = parser.parse_args(command(model["services"][name]))
        assert callable(args.handler), name


def test_the_api_needs_a_token_and_is_published_on_loopback_only(model: dict[str, Any]) -> None:
    api = model["services"]["api"]
    assert command(api) == ["serve", "--host", "0.0.0.0", "--port", "8000"]
    assert "PGSTASK_API_TOKENS" in environment(api)
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    # from the caller's shell, never a token written into the file
    assert "PGSTASK_API_TOKENS: ${PGSTASK_API_TOKENS:-}" in text
    ports = api["ports"]
    assert len(ports) == 1
    published = ports[0]
    if isinstance(published, dict):  # compose's normalised model
        assert (published["host_ip"], str(published["published"]), published["target"]) == (
            "127.0.0.1",
            "8000",
            8000,
        )
    else:
        assert published == "127.0.0.1:8000:8000"


def test_dockerfile_installs_pgstask_and_runs_its_command() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    instructions = [
        line.strip()
        for line in re.sub(r"\\\n", " ", text).splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert instructions[0] == "FROM python:3.12-slim"
    assert any(re.match(r"RUN pip install \.(\s|$)", i) for i in instructions)
    entrypoint = [i for i in instructions if i.startswith("ENTRYPOINT ")]
    assert len(entrypoint) == 1 and json.loads(entrypoint[0].split(" ", 1)[1]) == ["pgstask"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "scripts"
    ]
    assert "pgstask" in scripts
    for copy in (i for i in instructions if i.startswith("COPY ")):
        for source in copy.split()[1:-1]:
            assert (ROOT / source).exists(), f"the Dockerfile copies {source}, which is missing"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a:\n  b: 1\n  c:\n    - x\n    - 'y'\n", {"a": {"b": 1, "c": ["x", "y"]}}),
        ('k: ["CMD-SHELL", "pg_isready -U p"]  # why\n', {"k": ["CMD-SHELL", "pg_isready -U p"]}),
        ('r: "no"\nv:\n', {"r": "no", "v": None}),
    ],
)
def test_subset_parser_reads_what_the_file_uses(text: str, expected: Any) -> None:
    assert parse_yaml(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "a: 1\na: 2\n",  # duplicate key
        "a:\n\t- x\n",  # tab indentation
        "a: &anchor x\n",  # anchors
        "a: no\n",  # YAML 1.1 boolean
        "a:\n  - b: 1\n",  # mapping in a list
        "a:\n    b: 1\n  c: 2\n",  # inconsistent indentation
    ],
)
def test_subset_parser_rejects_what_it_does_not_understand(text: str) -> None:
    with pytest.raises(YamlSubsetError):
        parse_yaml(text)
