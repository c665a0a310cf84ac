// The Presets tab: every preset with its worker, action, data, priority and the schedules that
// start it, with Start (one task of the preset as it is) and "Start with…" (a JSON object
// merged over the preset's data, checked before sending).

import * as api from "./api.js";
import { byId, el, fill } from "./dom.js";
import * as format from "./format.js";
import { parseObject } from "./workers.js";

const presetPath = (name) => `presets/${encodeURIComponent(name)}`;

export class Presets {
  constructor(notify) {
    this.notify = notify;
    this.table = byId("preset-list");
  }

  show() {
    this.load();
  }

  hide() {}

  async load() {
    try {
      const { presets } = await api.get("presets");
      this.render(presets);
    } catch (err) {
      this.notify(err.message, "error");
    }
  }

  render(presets) {
    const head = el("thead", {}, el("tr", {},
      ["Preset", "Worker", "Data", "Priority", "Schedules", ""].map(
        (h) => el("th", { scope: "col" }, h))));
    const rows = presets.length
      ? presets.map((p) => this.row(p))
      : [el("tr", { class: "empty" }, el("td", { colspan: 6 },
          "No presets yet: pgstask presets add NAME WORKER ACTION, or POST /stask/presets."))];
    fill(this.table, head, el("tbody", {}, rows));
  }

  row(p) {
    const outcome = el("span", { class: "started" });
    const error = el("p", { class: "field-error", role: "alert", hidden: true });
    const overrides = el("textarea", {
      rows: "3", spellcheck: "false", "aria-label": "Data merged over the preset's (JSON)",
    }, "{}");
    const startWith = el("button", { type: "button" }, "Start with this data");
    startWith.addEventListener("click", () => {
      const parsed = parseObject(overrides.value, "Data");
      error.hidden = !parsed.error;
      fill(error, parsed.error || "");
      if (!parsed.error) this.start(p, parsed.value, outcome, error);
    });
    return el("tr", { "data-preset": p.name },
      el("td", {}, el("code", {}, p.name),
        p.description ? el("div", { class: "muted" }, p.description) : null),
      el("td", { class: "worker" }, el("code", {}, `${p.identifier} · ${p.action}`)),
      el("td", { class: "data" }, el("code", {}, JSON.stringify(p.data))),
      el("td", {}, p.priority, el("div", { class: "muted" }, `${p.max_attempts} attempts`)),
      el("td", {}, p.schedules.length ? p.schedules.join(", ") : "—"),
      el("td", { class: "actions" },
        el("button", { type: "button", onclick: () => this.start(p, null, outcome, error) },
          "Start"),
        " ", outcome,
        el("details", { class: "overrides" },
          el("summary", {}, "Start with…"),
          el("p", { class: "note" },
            "A JSON object merged over the preset's data: a key given replaces the preset's."),
          overrides, error,
          el("div", { class: "buttons" }, startWith))),
    );
  }

  async start(p, data, outcome, error) {
    try {
      const answer = await api.post(`${presetPath(p.name)}/start`, data ? { data } : {});
      error.hidden = true;
      const task = answer.task;
      fill(outcome, el("a", { href: `#task/${task.id}`, title: format.dateTime(task.created_at) },
        `#${task.id}`));
      this.notify(`${answer.message} (task #${task.id})`, "ok");
    } catch (err) {
      error.hidden = false;
      fill(error, err.message);
      this.notify(err.message, "error");
    }
  }
}
