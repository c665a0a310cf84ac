// Live progress: a bar, and two ways to keep it current. `poll` asks the progress endpoint once a
// second (used for lists: a browser keeps only six connections per server, so one stream per row
// would starve the page); `follow` listens to the task's Server-Sent Events stream (one task at
// a time), and falls back to polling if the stream fails.

import * as api from "./api.js";
import { el, fill } from "./dom.js";

const FINISHED = new Set(["completed", "cancelled", "failed"]);
const POLL_MS = 1000;

export const isFinished = (status) => FINISHED.has(status);

// A claim sets the message "Task started"; a task claimed by a pgstask before schema revision
// 0005 kept the message it was queued with ("Task queued", "Task queued for retry") while it
// ran, until the worker reported one of its own: that one is not shown.
const QUEUED = /^Task queued( for retry)?$/;

/** The message to show for a task: none while it runs and has reported none of its own. */
export function currentMessage(status, message) {
  const text = message || "";
  return (status === "running" || status === "preparing") && QUEUED.test(text) ? "" : text;
}

/** A progress bar with its label; update it with `setProgress`. */
export function progressBar(value, label, status) {
  const bar = el("progress", { max: "100", "aria-label": label || "Progress" });
  const text = el("span", { class: "progress-text" });
  const box = el("span", { class: "progress-box" }, bar, text);
  setProgress(box, { progress: value, status });
  return box;
}

/** Show `update` (the normalised progress) on a bar made by `progressBar`. */
export function setProgress(box, update) {
  const [bar, text] = box.children;
  const value = update.progress;
  if (value === null || value === undefined) {
    bar.removeAttribute("value"); // indeterminate: running, no report yet
    fill(text, "…");
    box.dataset.progress = "";
  } else {
    const clamped = Math.max(0, Math.min(100, Math.round(Number(value))));
    bar.value = clamped;
    fill(text, `${clamped} %`);
    box.dataset.progress = String(clamped);
  }
  if (update.status) box.dataset.status = update.status;
}

/** The fields the page shows, from either the progress endpoint or a stream event. */
export function normalise(raw) {
  const fromStream = "eta_text" in raw;
  return {
    id: raw.id,
    status: raw.status,
    progress: raw.progress,
    processed: raw.processed,
    total: raw.total,
    message: raw.message || "",
    eta: fromStream ? raw.eta_text : raw.eta,
    logLines: raw.log_lines || null,
  };
}

/** Poll a task's progress until it has finished or `stop()` is called. */
export function poll(id, onUpdate, onError) {
  let stopped = false;
  let timer = null;
  async function tick() {
    if (stopped) return;
    try {
      const update = normalise(await api.get(`${api.taskPath(id)}/progress`));
      if (stopped) return;
      onUpdate(update);
      if (isFinished(update.status)) return;
    } catch (err) {
      if (onError) onError(err);
      if (err.status === 404) return;
    }
    timer = window.setTimeout(tick, POLL_MS);
  }
  tick();
  return () => {
    stopped = true;
    window.clearTimeout(timer);
  };
}

/** Follow a task's progress stream until its end event; poll instead if the stream fails. */
export function follow(id, onUpdate, onError) {
  if (!("EventSource" in window)) return poll(id, onUpdate, onError);
  const source = new EventSource(`${api.taskPath(id)}/stream`);
  let fallback = null;
  source.addEventListener("progress", (event) => onUpdate(normalise(JSON.parse(event.data))));
  source.addEventListener("end", () => source.close());
  source.addEventListener("error", () => {
    // Any error: stop the browser's own reconnecting and poll (which also reports 401 and 404).
    source.close();
    if (!fallback) fallback = poll(id, onUpdate, onError);
  });
  return () => {
    source.close();
    if (fallback) fallback();
  };
}
