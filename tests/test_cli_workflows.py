"""``pgstask create --depends-on``, ``tasks show`` with parents and children, ``tasks workflow``
and ``tasks list --status waiting``: real subprocesses against a fresh database per test."""

from __future__ import annotations

import json

from tests.test_cli import cli, create, ok, status
from tests.test_cli import env as env  # the fixture


def test_a_diamond_created_from_the_cli_is_shown_with_its_dependencies(
    env: dict[str, str], dsn: str
) -> None:
    a = create(env, "nobody", "wait")  # no daemon has worker "nobody": it stays pending
    b = create(env, "demo", "noop", "--depends-on", str(a))
    c = create(env, "demo", "noop", "--depends-on", f" {a} ", "--on-parent-failure", "run")
    d = create(env, "demo", "noop", "--depends-on", f"{b},{c}")
    assert [status(dsn, t) for t in (a, b, c, d)] == ["pending", "waiting", "waiting", "waiting"]

    listed = json.loads(ok(env, "tasks", "list", "--status", "waiting", "--json"))
    assert [t["id"] for t in listed] == [d, c, b]
    assert json.loads(ok(env, "tasks", "list", "--status", "20", "--json")) == listed
    text = ok(env, "tasks", "list", "--status", "waiting")
    assert text.count("waiting") == 3

    shown = ok(env, "tasks", "show", str(d))
    assert "depends on:" in shown and f"{b},{c}" in shown
    assert "on parent failure: its worker's setting, else cancel" in shown
    assert "waiting for 2 of 2 parent(s) to finish" in shown
    assert "parents (2)" in shown and f"{b}  demo noop  waiting" in shown
    assert "children" not in shown
    root = ok(env, "tasks", "show", str(a))
    assert "children (2)" in root and f"{c}  demo noop  waiting" in root
    assert "depends on" not in root and "parents" not in root
    data = json.loads(ok(env, "tasks", "show", str(c), "--json"))
    assert data["task"]["on_parent_failure"] == "run"
    assert [p["id"] for p in data["parents"]] == [a]
    assert data["children"] == [
        {"id": d, "identifier": "demo", "action": "noop", "status": 20, "status_text": "waiting"}
    ]

    flow = ok(env, "tasks", "workflow", str(c))
    assert flow.startswith(f"workflow of task {c}: 4 tasks, 4 dependencies\n")
    rows = {int(line.split()[0]): line.split() for line in flow.splitlines()[3:7]}
    assert sorted(rows) == [a, b, c, d]
    assert rows[a][1:5] == ["0", "nobody", "wait", "pending"]
    assert rows[d][1:5] == ["2", "demo", "noop", "waiting"] and f"{b},{c}" in rows[d]
    edges = flow.split("dependencies (parent -> child)\n")[1].split()
    assert " ".join(edges) == f"{a} -> {b} {a} -> {c} {b} -> {d} {c} -> {d}"
    as_json = json.loads(ok(env, "tasks", "workflow", str(a), "--json"))
    assert [t["id"] for t in as_json["tasks"]] == [a, b, c, d]
    assert {(e["parent_id"], e["task_id"]) for e in as_json["edges"]} == {
        (a, b),
        (a, c),
        (b, d),
        (c, d),
    }

    alone = create(env, "demo", "noop")
    single = ok(env, "tasks", "workflow", str(alone))
    assert single.startswith(f"workflow of task {alone}: 1 task, 0 dependencies\n")
    assert "dependencies (parent" not in single

    # Cancelling the root: B (cancel, the default) is cancelled with it, C (run) is released.
    ok(env, "tasks", "cancel", str(a))
    assert [status(dsn, t) for t in (b, c, d)] == ["cancelled", "pending", "cancelled"]


def test_bad_dependencies_are_a_usage_error_and_create_nothing(
    env: dict[str, str], dsn: str
) -> None:
    parent = create(env, "nobody", "wait")
    cases = [
        (["--depends-on", "4,x"], "--depends-on: a task id is a whole number, not 'x'"),
        (["--depends-on", "4,,7"], "task ids are whole numbers separated by commas"),
        (["--depends-on", "0"], "a task id is positive, not 0"),
        (["--on-parent-failure", "later"], "--on-parent-failure: invalid choice: 'later'"),
        (["--depends-on", "424242"], "depends on task 424242, which does not exist"),
        (
            ["--depends-on", str(parent), "--dedupe-key", "k", "--throttle", "5"],
            "throttle and replace do not apply to a task with depends_on",
        ),
    ]
    for args, message in cases:
        result = cli(env, "create", "demo", "noop", *args)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert message in result.stderr, (args, result.stderr)
        assert result.stdout == ""
    assert ok(env, "tasks", "list", "--json").count('"id"') == 1
    missing = cli(env, "tasks", "workflow", "424242")
    assert missing.returncode == 4 and "424242" in missing.stderr
    bad = cli(env, "tasks", "list", "--status", "blocked")
    assert bad.returncode == 2 and "waiting" in bad.stderr  # the statuses it names
