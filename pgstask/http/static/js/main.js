// The dashboard's entry point: tabs by URL hash (#dashboard, #tasks, #task/<id>, #workers,
// #schedules, #presets, #performance), the notice line, and signing out.

import { byId, fill } from "./dom.js";
import { Overview } from "./overview.js";
import { Performance } from "./performance.js";
import { Presets } from "./presets.js";
import { Schedules } from "./schedules.js";
import { Tasks } from "./tasks.js";
import { Workers } from "./workers.js";

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
};
let current = null;

function route() {
  const hash = window.location.hash.replace(/^#/, "");
  const taskMatch = /^task\/(\d+)$/.exec(hash);
  const name = taskMatch ? "tasks" : Object.hasOwn(tabs, hash) ? hash : "dashboard";
  if (current && current !== name) tabs[current].hide();
  for (const panel of document.querySelectorAll("[data-panel]")) {
    panel.hidden = panel.dataset.panel !== name;
  }
  for (const link of document.querySelectorAll("nav [data-tab]")) {
    if (link.dataset.tab === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  current = name;
  if (name === "tasks") tabs.tasks.show(taskMatch ? taskMatch[1] : null);
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
