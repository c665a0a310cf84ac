// The Workers tab: a card per worker with Activate/Deactivate, its limits as the claim enforces
// them, "Run an action" (options as JSON, checked before sending, then the new task's live
// progress) and its settings (view, edit as JSON: the keys sent are merged into the stored
// settings).

import * as api from "./api.js";
import { byId, el, fill } from "./dom.js";
import * as format from "./format.js";
import { workerIcon } from "./icons.js";
import { currentMessage, follow, progressBar, setProgress } from "./progress.js";
import { statusBadge } from "./tasklist.js";

/** A textarea's text as a JSON object: {value} or {error} saying what is wrong. */
export function parseObject(text, what) {
  let value;
  try {
    value = JSON.parse(text.trim() || "{}");
  } catch (err) {
    return { error: `${what} are not valid JSON: ${err.message}` };
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return { error: `${what} must be a JSON object, like {"rows": 100}` };
  }
  return { value };
}

/** The limits of a worker (s_workers.flow, docs/limits.md) in words; "" without any. */
export function limitsText(flow) {
  if (!flow) return "";
  const parts = [];
  if (flow.max_running) parts.push(`at most ${flow.max_running} running`);
  if (flow.max_running_per_key) parts.push(`${flow.max_running_per_key} per key`);
  const rate = flow.rate_limit;
  if (rate) {
    parts.push(`${rate.limit} starts per ${rate.per} s${rate.per_key ? " per key" : ""}`);
  }
  if (flow.fair_share) parts.push("keys share fairly");
  return parts.join(", ");
}

function showError(node, message) {
  node.hidden = !message;
  fill(node, message || "");
}

export class Workers {
  constructor(notify) {
    this.notify = notify;
    this.cards = byId("worker-cards");
    this.stops = [];
  }

  show() {
    this.load();
  }

  hide() {
    for (const stop of this.stops) stop();
    this.stops = [];
  }

  async load() {
    this.hide();
    try {
      const { workers } = await api.get("workers");
      if (!workers.length) {
        fill(this.cards, el("p", { class: "empty" },
          "No workers are registered yet: start a daemon (pgstask daemon), or discover them."));
        return;
      }
      fill(this.cards, workers.map((w) => this.card(w)));
    } catch (err) {
      this.notify(err.message, "error");
    }
  }

  card(worker) {
    const name = worker.title || worker.identifier;
    const state = worker.active ? "active" : "inactive";
    return el("article", {
      class: `worker-card ${state}`,
      "data-worker": worker.identifier,
      "aria-label": `Worker ${worker.identifier}`,
    },
      el("header", {},
        el("span", { class: "worker-icon", title: worker.icon || null },
          workerIcon(worker.icon)),
        el("div", {},
          el("h2", {}, name),
          el("code", {}, worker.identifier),
          worker.scope ? el("span", { class: "scope" }, worker.scope) : null,
        ),
        el("span", { class: `state ${worker.active ? "on" : "off"}` }, state),
      ),
      worker.description ? el("p", { class: "description" }, worker.description) : null,
      worker.flow ? el("p", { class: "limits" }, "Limits: ", limitsText(worker.flow)) : null,
      worker.installed_here ? null : el("p", { class: "note" },
        "Not installed where this API runs: daemons elsewhere may run it."),
      el("div", { class: "buttons" },
        el("button", {
          type: "button",
          class: worker.active ? "quiet" : null,
          onclick: () => this.setActive(worker, !worker.active),
        }, worker.active ? "Deactivate" : "Activate"),
      ),
      this.runForm(worker),
      this.settings(worker),
    );
  }

  async setActive(worker, active) {
    try {
      const answer = await api.post(`worker/${active ? "activate" : "deactivate"}`, {
        identifier: worker.identifier,
      });
      this.notify(`${worker.identifier}: ${answer.message}`, "ok");
      const card = this.cards.querySelector(`[data-worker="${CSS.escape(worker.identifier)}"]`);
      if (card) card.replaceWith(this.card(answer.worker));
    } catch (err) {
      this.notify(err.message, "error");
    }
  }

  runForm(worker) {
    const actions = worker.actions || [];
    const error = el("p", { class: "field-error", role: "alert", hidden: true });
    const outcome = el("div", { class: "run-outcome" });
    const action = el("select", { name: "action", required: true, "aria-label": "Action" },
      actions.map((a) => el("option", { value: a }, a)));
    const priority = el("select", { name: "priority", "aria-label": "Priority" },
      ["normal", "high", "low"].map((p) => el("option", { value: p }, p)));
    const options = el("textarea", {
      name: "options", rows: "3", spellcheck: "false", "aria-label": "Options (JSON object)",
    }, "{}");
    const form = el("form", { class: "run", "aria-label": `Run an action of ${worker.identifier}` },
      el("h3", {}, "Run an action"),
      el("label", {}, "Action ", action),
      el("label", {}, "Priority ", priority),
      el("label", { class: "block" }, "Options (JSON object)", options),
      error,
      el("button", { type: "submit", disabled: !worker.active || !actions.length }, "Run"),
      worker.active ? null : el("span", { class: "note" }, " Activate the worker to run it."),
      outcome,
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const parsed = parseObject(options.value, "Options");
      showError(error, parsed.error);
      if (parsed.error) return;
      const path = `${api.workerPath(worker.identifier)}/run/${encodeURIComponent(action.value)}`;
      try {
        const created = await api.post(path, { options: parsed.value, priority: priority.value });
        this.watch(created.id, outcome);
      } catch (err) {
        showError(error, err.message);
      }
    });
    return form;
  }

  /** Show a new task's live progress under the form that started it. */
  watch(id, outcome) {
    const bar = progressBar(0, `Progress of task ${id}`);
    const status = el("span", {}, statusBadge("pending"));
    const message = el("span", { class: "message" });
    fill(outcome, el("p", { "data-task-id": id },
      el("a", { href: `#task/${id}` }, `Task ${id}`), " ", status, " ", bar, " ", message));
    const update = (progress) => {
      setProgress(bar, progress);
      fill(status, statusBadge(progress.status));
      fill(message, currentMessage(progress.status, progress.message));
    };
    this.stops.push(follow(id, update, (err) => this.notify(err.message, "error")));
  }

  settings(worker) {
    const text = () => format.json(worker.settings || {});
    const view = el("pre", { class: "json" }, text());
    const editor = el("textarea", {
      rows: "6", spellcheck: "false", hidden: true, "aria-label": "Settings (JSON)",
    });
    const error = el("p", { class: "field-error", role: "alert", hidden: true });
    const edit = el("button", { type: "button", class: "quiet" }, "Edit");
    const save = el("button", { type: "button", hidden: true }, "Save settings");
    const editing = (on) => {
      editor.hidden = save.hidden = !on;
      view.hidden = edit.hidden = on;
    };
    edit.addEventListener("click", () => {
      editor.value = text();
      editing(true);
    });
    save.addEventListener("click", async () => {
      const parsed = parseObject(editor.value, "Settings");
      showError(error, parsed.error);
      if (parsed.error) return;
      try {
        const path = `${api.workerPath(worker.identifier)}/settings`;
        const answer = await api.post(path, { settings: parsed.value });
        this.notify(`${worker.identifier}: ${answer.message}`, "ok");
        worker.settings = answer.worker.settings;
        fill(view, text());
        const card = this.cards.querySelector(`[data-worker="${CSS.escape(worker.identifier)}"]`);
        if (card) card.replaceWith(this.card(answer.worker));
        editing(false);
      } catch (err) {
        showError(error, err.message);
      }
    });
    return el("details", { class: "settings" },
      el("summary", {}, "Settings"),
      el("p", { class: "note" },
        "Stored settings; the worker's own defaults apply to every key not set here. Keys you "
        + "save are merged into them, and running daemons use them at once."),
      view, editor, error,
      el("div", { class: "buttons" }, edit, save),
    );
  }
}
