// Tables of tasks (recent tasks, failures, the Tasks tab), with live bars, messages and
// durations on running rows.

import { el, fill } from "./dom.js";
import { durationView, stopCounting } from "./elapsed.js";
import * as format from "./format.js";
import { currentMessage, isFinished, poll, progressBar, setProgress } from "./progress.js";

// Only running rows are polled: a page of pending tasks would otherwise send a request per row
// every second. The tables are refreshed (or the task opened) to see a pending task start.
const RUNNING = new Set(["preparing", "running"]);

export function statusBadge(status) {
  return el("span", { class: `status status-${status}` }, status);
}

const COLUMNS = {
  id: ["#", (t) => el("a", { href: `#task/${t.id}`, "aria-label": `Task ${t.id}` }, String(t.id))],
  worker: ["Worker", (t) => el("code", {}, t.identifier)],
  action: ["Action", (t) => el("span", { class: "action" }, t.action)],
  status: ["Status", (t) => statusBadge(t.status_text)],
  progress: [
    "Progress",
    (t) => {
      const value = RUNNING.has(t.status_text) ? null : t.progress; // live value follows
      return progressBar(value, `Progress of task ${t.id}`, t.status_text);
    },
  ],
  priority: ["Priority", (t) => t.priority],
  attempts: ["Attempts", (t) => `${t.attempts}/${t.max_attempts}`],
  duration: ["Duration", (t) => durationView(t)],
  message: ["Message", (t) => el("span", { class: "message" }, rowMessage(t))],
  created: ["Created", (t) => when(t.created_at)],
  finished: ["Finished", (t) => when(t.finished_at)],
};

/** A table's time: short, with the full date and time as its tooltip. */
function when(iso) {
  return el("time", { datetime: iso, title: format.dateTime(iso) }, format.shortDateTime(iso));
}

/** A row's message: the first line (a traceback belongs to the task's page). */
function rowMessage(task) {
  const running = RUNNING.has(task.status_text);
  const text = currentMessage(task.status_text, task.message) || (running ? "" : task.last_error);
  return String(text || "").split("\n", 1)[0];
}

/**
 * A table of tasks that keeps the bars of its running rows current. `render(tasks)` replaces
 * the rows, `add(tasks)` appends (paging); `stop()` ends the polling.
 */
export class TaskTable {
  constructor(table, columns, emptyText) {
    this.table = table;
    this.columns = columns;
    this.emptyText = emptyText || "No tasks.";
    this.watchers = new Map();
    this.latest = new Map(); // the last progress seen per task, so a re-render does not flicker
    this.body = el("tbody");
    fill(
      table,
      el("thead", {}, el("tr", {}, columns.map((c) => el("th", { scope: "col" }, COLUMNS[c][0])))),
      this.body,
    );
  }

  render(tasks) {
    this.stop();
    const shown = new Set(tasks.map((t) => t.id));
    for (const id of this.latest.keys()) if (!shown.has(id)) this.latest.delete(id);
    fill(this.body);
    this.add(tasks);
  }

  add(tasks) {
    if (!tasks.length && !this.body.children.length) {
      this.body.append(
        el("tr", { class: "empty" }, el("td", { colspan: this.columns.length }, this.emptyText)),
      );
      return;
    }
    for (const task of tasks) this.body.append(this.row(task));
  }

  row(task) {
    const tr = el("tr", { "data-task-id": task.id, "data-status": task.status_text });
    for (const name of this.columns) {
      tr.append(el("td", { class: `col-${name}` }, COLUMNS[name][1](task)));
    }
    if (RUNNING.has(task.status_text)) {
      if (this.latest.has(task.id)) this.update(tr, this.latest.get(task.id));
      this.watchers.set(
        task.id,
        poll(task.id, (update) => {
          this.latest.set(task.id, update);
          this.update(tr, update);
        }),
      );
    }
    return tr;
  }

  /** Show a running row's latest progress: bar, status, message; a finished task's duration
   * stops counting (the next refresh of the table shows the exact one). */
  update(tr, update) {
    const box = tr.querySelector(".progress-box");
    if (box) setProgress(box, update);
    const badge = tr.querySelector(".status");
    if (badge && update.status !== badge.textContent) {
      badge.replaceWith(statusBadge(update.status));
      tr.dataset.status = update.status;
    }
    const message = tr.querySelector(".col-message .message");
    if (message) fill(message, rowMessage({ status_text: update.status, message: update.message }));
    const duration = tr.querySelector(".duration.live");
    if (duration && isFinished(update.status)) stopCounting(duration);
  }

  stop() {
    for (const stop of this.watchers.values()) stop();
    this.watchers.clear();
  }
}
