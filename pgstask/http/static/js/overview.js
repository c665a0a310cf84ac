// The Dashboard tab: counts, the chart, alerts, recent tasks with live bars, recent failures.
// Refreshed every few seconds while it is shown.

import * as api from "./api.js";
import { renderAlerts } from "./alerts.js";
import { timelineChart } from "./chart.js";
import { byId, el, fill } from "./dom.js";
import { TaskTable } from "./tasklist.js";

const REFRESH_MS = 5000;
const CARDS = [
  ["pending", "Pending"],
  ["waiting", "Waiting"],
  ["running", "Running"],
  ["completed", "Completed"],
  ["failed", "Failed"],
  ["cancelled", "Cancelled"],
  ["total", "Total"],
  ["active_workers", "Active workers"],
];

export class Overview {
  constructor(notify) {
    this.notify = notify;
    this.timer = null;
    this.shown = false;
    this.recent = new TaskTable(
      byId("recent-tasks"),
      ["id", "worker", "action", "status", "progress", "duration", "created", "message"],
      "No tasks yet.",
    );
    this.failures = new TaskTable(
      byId("recent-failures"),
      ["id", "worker", "action", "message"],
      "No failed tasks.",
    );
  }

  show() {
    this.shown = true;
    this.refresh();
  }

  hide() {
    this.shown = false;
    window.clearTimeout(this.timer);
    this.recent.stop();
  }

  async refresh() {
    window.clearTimeout(this.timer);
    if (!this.shown) return;
    try {
      const [stats, recent, failed, alerts, timeline] = await Promise.all([
        api.get("stats"),
        api.get("tasks", { limit: 8 }),
        api.get("tasks", { status: "failed", limit: 5 }),
        api.get("performance/alerts"),
        api.get("performance/timeline", { hours: 24 }),
      ]);
      this.renderCards(stats);
      this.recent.render(recent.tasks);
      this.failures.render(failed.tasks);
      renderAlerts(byId("dashboard-alerts"), alerts.data);
      const { points, bucket_seconds: bucket } = timeline.data;
      const chart = byId("timeline-chart");
      fill(chart, timelineChart(points, bucket, 24, chart.clientWidth));
    } catch (err) {
      this.notify(err.message, "error");
    }
    if (this.shown) this.timer = window.setTimeout(() => this.refresh(), REFRESH_MS);
  }

  renderCards(stats) {
    fill(
      byId("stat-cards"),
      CARDS.map(([key, label]) =>
        el("div", { class: `stat-card stat-${key}`, "data-stat": key },
          el("span", { class: "stat-value" }, String(stats[key] ?? 0)),
          el("span", { class: "stat-label" }, label),
        ),
      ),
    );
  }
}
