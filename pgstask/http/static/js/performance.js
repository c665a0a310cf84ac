// The Performance tab: the summary and per-worker figures over a window, alerts, and the API's
// worker cache with its Clear button.

import * as api from "./api.js";
import { renderAlerts } from "./alerts.js";
import { byId, el, fill } from "./dom.js";
import * as format from "./format.js";

const WORKER_COLUMNS = [
  "Worker", "Finished", "Completed", "Failed", "Cancelled", "Success", "Avg duration",
  "Max duration", "Avg memory", "Peak memory", "Last run",
];

function facts(pairs) {
  return el("dl", { class: "facts" }, pairs.map(([term, value]) => [
    el("dt", {}, term),
    el("dd", {}, value),
  ]));
}

function header(...names) {
  return el("thead", {}, el("tr", {}, names.map((name) => el("th", { scope: "col" }, name))));
}

const number = (value) => el("td", { class: "number" }, value);

export class Performance {
  constructor(notify) {
    this.notify = notify;
    this.window = byId("performance-window");
    this.window.addEventListener("change", () => this.load());
    byId("cache-clear").addEventListener("click", () => this.clearCache());
  }

  show() {
    this.load();
  }

  hide() {}

  hours() {
    return Number(new FormData(this.window).get("hours") || 24);
  }

  async load() {
    const hours = this.hours();
    try {
      const [summary, workers, alerts, cache] = await Promise.all([
        api.get("performance/summary", { hours }),
        api.get("performance/workers", { hours }),
        api.get("performance/alerts"),
        api.get("cache/stats"),
      ]);
      this.renderSummary(summary.data);
      this.renderWorkers(Object.values(workers.data));
      renderAlerts(byId("performance-alerts"), alerts.data);
      this.renderCache(cache.data);
    } catch (err) {
      this.notify(err.message, "error");
    }
  }

  renderSummary({ tasks, performance, errors }) {
    const common = errors.common_errors.length
      ? el("table", { class: "figures" },
          header("Error", "Count"),
          el("tbody", {}, errors.common_errors.map((e) =>
            el("tr", {}, el("td", { class: "message" }, e.message), number(String(e.count))))),
        )
      : el("p", { class: "note" }, "No errors in this window.");
    fill(
      byId("performance-summary"),
      el("div", { class: "two" },
        facts([
          ["Created", String(tasks.total)],
          ["Finished", String(tasks.finished)],
          ["Completed", String(tasks.completed)],
          ["Failed", String(tasks.failed)],
          ["Cancelled", String(tasks.cancelled)],
          ["Running now", String(tasks.running)],
          ["Queued now", String(tasks.queued)],
        ]),
        facts([
          ["Success rate", format.percent(performance.success_rate)],
          ["Error rate", format.percent(performance.error_rate)],
          ["Average duration", format.seconds(performance.average_duration)],
          ["Total execution time", format.seconds(performance.total_execution_time)],
          ["Average memory", format.bytes(performance.average_memory)],
          ["Peak memory", format.bytes(performance.max_memory)],
        ]),
      ),
      el("h3", {}, "Most common errors"),
      common,
    );
  }

  renderWorkers(rows) {
    const body = rows.map((w) => el("tr", {},
      el("td", {}, el("code", {}, w.identifier)),
      [w.total_tasks, w.completed, w.failed, w.cancelled].map((n) => number(String(n))),
      number(format.percent(w.success_rate)),
      number(format.seconds(w.average_duration)),
      number(format.seconds(w.max_duration)),
      number(format.bytes(w.memory_usage)),
      number(format.bytes(w.max_memory)),
      el("td", {}, format.dateTime(w.last_execution)),
    ));
    if (!body.length) {
      body.push(el("tr", { class: "empty" },
        el("td", { colspan: WORKER_COLUMNS.length }, "No finished tasks in this window.")));
    }
    fill(byId("performance-workers"), header(...WORKER_COLUMNS), el("tbody", {}, body));
  }

  renderCache(data) {
    fill(
      byId("cache-stats"),
      [
        ["Hits", String(data.hits)],
        ["Misses", String(data.misses)],
        ["Hit rate", format.percent(data.hit_rate)],
        ["Entries", String(data.cache_size)],
        ["Evictions", String(data.evictions)],
        ["Entry lifetime", format.seconds(data.ttl_seconds)],
      ].map(([term, value]) => [el("dt", {}, term), el("dd", {}, value)]),
    );
  }

  async clearCache() {
    try {
      const answer = await api.post("cache/clear");
      this.notify(answer.message, "ok");
      this.renderCache((await api.get("cache/stats")).data);
    } catch (err) {
      this.notify(err.message, "error");
    }
  }
}
