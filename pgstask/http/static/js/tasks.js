// The Tasks tab: filters, pages of tasks (keyset: next_before_id), and one task's detail with
// its live progress, last log lines, downloads, Cancel and Retry, and links to the tasks it
// depends on, those that depend on it and the graph of its workflow.

import * as api from "./api.js";
import { byId, el, fill } from "./dom.js";
import { durationView } from "./elapsed.js";
import * as format from "./format.js";
import { logItems, textBlock } from "./logs.js";
import { currentMessage, isFinished, poll, progressBar, setProgress } from "./progress.js";
import { TaskTable, statusBadge } from "./tasklist.js";

const PAGE = 25;
const LOG_RECORDS = 20;
const RELATED_SHOWN = 50; // parents or children linked by name; the graph has them all
const COLUMNS = [
  "id", "worker", "action", "status", "progress", "priority", "attempts", "created", "duration",
  "message",
];

/** Whether a task's result names a file the download endpoint can serve. */
function hasFile(task) {
  const result = task.result;
  if (typeof result === "string") return true;
  return Boolean(result && typeof result === "object" && ("file_id" in result || "path" in result));
}

/** Links to related tasks (parents, children): "#4 sample · noop" with its status. */
function relatedLinks(tasks, kind) {
  if (!tasks.length) return null;
  const shown = tasks.slice(0, RELATED_SHOWN).map((t) =>
    el("li", { "data-task-id": t.id },
      el("a", { href: `#task/${t.id}`, "aria-label": `Task ${t.id}` }, `#${t.id}`),
      " ", el("code", {}, t.identifier), " · ", el("span", { class: "action" }, t.action),
      " ", statusBadge(t.status_text)));
  const more = tasks.length - shown.length;
  return el("ul", { class: `related ${kind}` }, shown,
    more > 0 ? el("li", { class: "note" }, `and ${more} more (see the workflow)`) : null);
}

export class Tasks {
  constructor(notify) {
    this.notify = notify;
    this.form = byId("task-filters");
    this.more = byId("tasks-more");
    this.detail = byId("task-detail");
    this.table = new TaskTable(byId("task-list"), COLUMNS, "No tasks match.");
    this.nextBefore = null;
    this.stopDetail = null;
    this.related = { parents: [], children: [] };
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.load();
    });
    // "reset" fires before the fields are cleared: load once they are.
    this.form.addEventListener("reset", () => window.setTimeout(() => this.load(), 0));
    this.more.addEventListener("click", () => this.load(this.nextBefore));
  }

  show(taskId) {
    this.load();
    if (taskId) this.open(taskId);
    else this.close();
  }

  hide() {
    this.table.stop();
    this.close();
  }

  filters() {
    const data = new FormData(this.form);
    const params = { limit: PAGE };
    for (const name of ["status", "identifier", "action", "priority"]) {
      const value = String(data.get(name) || "").trim();
      if (value) params[name] = value;
    }
    for (const name of ["created_from", "created_to"]) {
      const value = String(data.get(name) || "");
      if (value) params[name] = new Date(value).toISOString(); // the API wants an offset
    }
    return params;
  }

  async load(beforeId) {
    const params = this.filters();
    if (beforeId) params.before_id = beforeId;
    try {
      const page = await api.get("tasks", params);
      if (beforeId) this.table.add(page.tasks);
      else this.table.render(page.tasks);
      this.nextBefore = page.next_before_id;
      this.more.hidden = !this.nextBefore;
    } catch (err) {
      this.notify(err.message, "error");
    }
  }

  close() {
    this.related = { parents: [], children: [] };
    if (this.stopDetail) this.stopDetail();
    this.stopDetail = null;
    this.detail.hidden = true;
    delete this.detail.dataset.taskId;
    fill(this.detail);
  }

  async open(id) {
    this.close();
    try {
      const answer = await api.get(api.taskPath(id));
      this.related = { parents: answer.parents || [], children: answer.children || [] };
      this.renderDetail(answer.task);
    } catch (err) {
      this.notify(err.message, "error");
    }
  }

  renderDetail(task) {
    const { parents, children } = this.related;
    if (this.stopDetail) this.stopDetail();
    this.stopDetail = null;
    const status = task.status_text;
    const bar = progressBar(task.progress, `Progress of task ${task.id}`, status);
    const progressNote = el("span", { class: "progress-note" });
    const message = el("div", { class: "live-message" },
      textBlock(currentMessage(status, task.message)));
    const logs = el("ol", { class: "log-lines", "aria-label": "Last log records" });
    const path = api.taskPath(task.id);
    const button = (text, onclick, kind) =>
      el("button", { type: "button", class: kind || null, onclick }, text);
    const link = (text, href, kind) =>
      el("a", { class: `button ${kind || ""}`.trim(), href, download: "" }, text);
    const buttons = el("div", { class: "buttons" },
      isFinished(status) ? null : button("Cancel", () => this.change(task, "cancel"), "danger"),
      ["failed", "cancelled"].includes(status)
        ? button("Retry", () => this.change(task, "retry"))
        : null,
      status === "completed" && hasFile(task) ? link("Download result", `${path}/download`) : null,
      link("Download logs", `${path}/logs/download`, "quiet"),
      button("Close", () => this.closeAndForget(), "quiet"),
    );
    const facts = [
      ["Worker", el("code", {}, task.identifier)],
      ["Action", el("span", { class: "action" }, task.action)],
      ["Status", statusBadge(status)],
      ["Progress", el("span", { class: "progress-line" }, bar, " ", progressNote)],
      ["Message", message],
      ["Priority", task.priority],
      // Only when set: most tasks have none (it groups a worker's per-key limits).
      ...(task.concurrency_key == null ? [] : [[
        "Concurrency key", el("code", { class: "concurrency-key" }, task.concurrency_key),
      ]]),
      // Only for a task in a workflow.
      ...(parents.length ? [["Parents", relatedLinks(parents, "parents")]] : []),
      ...(status === "waiting" ? [[
        "Waiting for", `${task.waiting_for} of ${parents.length} parent(s) to finish`,
      ]] : []),
      ...(children.length ? [["Children", relatedLinks(children, "children")]] : []),
      ...(parents.length || children.length ? [[
        "Workflow", el("a", { href: `#workflow/${task.id}`, class: "workflow-link" },
          "Workflow graph"),
      ]] : []),
      ["Attempts", `${task.attempts} of ${task.max_attempts}`],
      ["Created", format.dateTime(task.created_at)],
      ["Start at", format.dateTime(task.start_at)],
      ["Started", format.dateTime(task.started_at)],
      ["Finished", format.dateTime(task.finished_at)],
      ["Duration", durationView(task)],
      ["Peak memory", format.bytes(task.peak_memory)],
      ["Last error", textBlock(task.last_error, "last-error")],
    ];
    fill(
      this.detail,
      el("h2", {}, `Task ${task.id}`),
      buttons,
      el("dl", { class: "facts" }, facts.map(([term, value]) => [
        el("dt", {}, term),
        el("dd", {}, value),
      ])),
      el("h3", {}, "Options (meta)"),
      el("pre", { class: "json" }, format.json(task.meta)),
      el("h3", {}, "Result"),
      el("pre", { class: "json" }, task.result === null ? "—" : format.json(task.result)),
      el("h3", {}, "Last log records"),
      logs,
    );
    this.detail.hidden = false;
    this.detail.dataset.taskId = String(task.id);

    // Polled while the detail is open: the progress endpoint gives the live message and the
    // last log lines as text; when those change, the records are read (with their context).
    // When the status changes the task is read again (its buttons and times change too).
    let seenLines = null;
    let asked = 0; // the newest request for the records: an older answer is not shown
    const update = (progress) => {
      if (this.detail.dataset.taskId !== String(task.id)) return;
      setProgress(bar, progress);
      const live = progress.eta && progress.eta !== "—" && !isFinished(progress.status);
      const counts = progress.total ? `${progress.processed ?? 0} of ${progress.total}` : "";
      fill(progressNote, [counts, live ? `ETA ${progress.eta}` : ""].filter(Boolean).join(" · "));
      fill(message, textBlock(currentMessage(progress.status, progress.message)));
      const lines = (progress.logLines || []).join("\n");
      if (lines !== seenLines) {
        seenLines = lines;
        const ask = (asked += 1);
        this.showLogs(task.id, logs, () => ask === asked);
      }
      if (progress.status !== status) this.open(task.id);
    };
    this.stopDetail = poll(task.id, update, (err) => this.notify(err.message, "error"));
  }

  /** Read a task's last log records into `list`, unless `current()` says a newer read began. */
  async showLogs(id, list, current) {
    try {
      const answer = await api.get(`${api.taskPath(id)}/logs`, { limit: LOG_RECORDS });
      if (current() && this.detail.dataset.taskId === String(id)) {
        fill(list, logItems(answer.logs));
      }
    } catch (err) {
      this.notify(err.message, "error");
    }
  }

  closeAndForget() {
    this.close();
    if (window.location.hash.startsWith("#task/")) window.history.replaceState(null, "", "#tasks");
  }

  async change(task, what) {
    try {
      const answer = await api.post(`${api.taskPath(task.id)}/${what}`);
      this.notify(`Task ${task.id}: ${answer.message}`, "ok");
      // A cancel reaches the children too: read their statuses again.
      if (this.related.children.length) this.open(task.id);
      else this.renderDetail(answer.task);
      this.load();
    } catch (err) {
      this.notify(err.message, "error");
    }
  }
}
