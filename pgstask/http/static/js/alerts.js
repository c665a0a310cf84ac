// The alert list of /stask/performance/alerts (shown on the Dashboard and Performance tabs).

import { el, fill } from "./dom.js";

export function renderAlerts(list, alerts) {
  if (!alerts.length) {
    fill(list, el("li", { class: "alert ok" }, "No alerts."));
    return;
  }
  fill(
    list,
    alerts.map((alert) => {
      const severity = alert.severity === "critical" ? "critical" : "warning";
      const ids = alert.task_ids ? ` (tasks ${alert.task_ids.join(", ")})` : "";
      const label = el("strong", {}, severity);
      return el("li", { class: `alert ${severity}` }, label, " ", alert.message, ids);
    }),
  );
}
