// The dashboard's entry point: tabs by URL hash (#dashboard, #tasks, #task/<id>,
// #workflow/<id>, #workers, #schedules, #presets, #performance), the notice line, and signing
// out. A workflow is a view of the Tasks tab's: its link stays the current one.

import { byId, fill } from "./dom.js";
import { Overview } from "./overview.js";
import { Performance } from "./performance.js";
import { Presets } from "./presets.js";
import { Schedules } from "./schedules.js";
import { Tasks } from "./tasks.js";
import { Workers } from "./workers.js";
import { WorkflowView } from "./workflow.js";

const notice = byId("notice");
let noticeTimer = null;

/** Show a message at the top of the page: an API error, or the outcome of an action. */
function notify(text, kind) {
  window.clearTimeout(noticeTimer);
  fill(notice, text);
  notice.className = kind === "error" ? "error" : "ok";
  notice.hidden = false;
  if (kind !== "error") noticeTimer = window.setTimeout(() => (notice.hidden = true), 6000);
}

notice.addEventListener("click", () => (notice.hidden = true));

const tabs = {
  dashboard: new Overview(notify),
  tasks: new Tasks(notify),
  workers: new Workers(notify),
  schedules: new Schedules(notify),
  presets: new Presets(notify),
  performance: new Performance(notify),
  workflow: new WorkflowView(notify),
};
let current = null;

function route() {
  const hash = window.location.hash.replace(/^#/, "");
  const taskMatch = /^task\/(\d+)$/.exec(hash);
  const flowMatch = /^workflow\/(\d+)$/.exec(hash);
  const name = taskMatch ? "tasks" : flowMatch ? "workflow"
    : Object.hasOwn(tabs, hash) && hash !== "workflow" ? hash : "dashboard";
  if (current && current !== name) tabs[current].hide();
  for (const panel of document.querySelectorAll("[data-panel]")) {
    panel.hidden = panel.dataset.panel !== name;
  }
  const tab = name === "workflow" ? "tasks" : name;
  for (const link of document.querySelectorAll("nav [data-tab]")) {
    if (link.dataset.tab === tab) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  current = name;
  if (name === "tasks") tabs.tasks.show(taskMatch ? taskMatch[1] : null);
  else if (name === "workflow") tabs.workflow.show(flowMatch[1]);
  else tabs[name].show();
}

byId("sign-out").addEventListener("click", async () => {
  try {
    await fetch("logout", {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-Pgstask-Request": "1" },
    });
  } finally {
    window.location.assign("login");
  }
});

window.addEventListener("hashchange", route);
route();
