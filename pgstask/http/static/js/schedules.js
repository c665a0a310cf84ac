// The Schedules tab: every cron schedule with its expression and zone, its state, its next run
// (in the browser's time zone) and its last task, with Pause/Resume and Run now. A schedule that
// starts a preset shows the preset, and the preset's worker and action.

import * as api from "./api.js";
import { byId, el, fill } from "./dom.js";
import * as format from "./format.js";

const schedulePath = (name) => `schedules/${encodeURIComponent(name)}`;

function state(s) {
  if (s.last_error) return { text: "disabled", title: s.last_error, cls: "off" };
  if (!s.active) return { text: "paused", title: null, cls: "off" };
  const missing = s.missing_from_code_at ? "no longer declared by its worker" : null;
  return { text: missing ? "active, not in code" : "active", title: missing, cls: "on" };
}

function target(s) {
  const what = s.preset_identifier ? `${s.preset_identifier} · ${s.preset_action}` : "missing";
  return [el("code", {}, what), " ", el("span", { class: "muted" }, `preset ${s.preset}`)];
}

export class Schedules {
  constructor(notify) {
    this.notify = notify;
    this.table = byId("schedule-list");
  }

  show() {
    this.load();
  }

  hide() {}

  async load() {
    try {
      const { schedules } = await api.get("schedules");
      this.render(schedules);
    } catch (err) {
      this.notify(err.message, "error");
    }
  }

  render(schedules) {
    const head = el("thead", {}, el("tr", {},
      ["Schedule", "Worker", "When", "State", "Next run", "Last task", ""].map(
        (h) => el("th", { scope: "col" }, h))));
    const rows = schedules.length
      ? schedules.map((s) => this.row(s))
      : [el("tr", { class: "empty" }, el("td", { colspan: 7 },
          "No schedules yet: declare them on a worker (schedules = {…}), or "
          + "pgstask schedules add."))];
    fill(this.table, head, el("tbody", {}, rows));
  }

  row(s) {
    const st = state(s);
    const toggle = s.active
      ? el("button", { type: "button", class: "quiet", onclick: () => this.act(s, "pause") },
          "Pause")
      : el("button", { type: "button", class: "quiet", onclick: () => this.act(s, "resume") },
          "Resume");
    return el("tr", { "data-schedule": s.name },
      el("td", {}, el("code", {}, s.name)),
      el("td", {}, s.preset ? target(s) : el("code", {}, `${s.identifier} · ${s.action}`)),
      el("td", {}, el("code", {}, s.cron), " ", el("span", { class: "muted" }, s.timezone)),
      el("td", {}, el("span", { class: `state ${st.cls}`, title: st.title }, st.text)),
      el("td", { title: format.dateTime(s.next_run_at) },
        s.active ? format.shortDateTime(s.next_run_at) : "—"),
      el("td", {}, s.last_task_id
        ? el("a", { href: `#task/${s.last_task_id}` }, `#${s.last_task_id}`)
        : "—"),
      el("td", { class: "actions" }, toggle, " ",
        el("button", { type: "button", onclick: () => this.act(s, "run") }, "Run now")),
    );
  }

  async act(s, what) {
    try {
      const answer = await api.post(`${schedulePath(s.name)}/${what}`);
      const task = answer.task ? ` (task #${answer.task.id})` : "";
      this.notify(`${answer.message}${task}`, "ok");
    } catch (err) {
      this.notify(err.message, "error");
    }
    this.load();
  }
}
