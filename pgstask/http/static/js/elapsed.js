// How long a task has run: fixed once it finished, counting up once a second while it runs.
// One timer serves the whole page; it runs only while a counting element is in the document.

import { el } from "./dom.js";
import * as format from "./format.js";

const TICK_MS = 1000;
const ACTIVE = new Set(["preparing", "running"]);
const counting = new Map(); // element → the task's started_at, in ms
let timer = null;

function tick() {
  const now = Date.now();
  for (const [node, start] of counting) {
    if (!node.isConnected) counting.delete(node);
    else node.textContent = format.elapsed((now - start) / 1000);
  }
  if (!counting.size) {
    window.clearInterval(timer);
    timer = null;
  }
}

/** An element showing a task's duration; it counts up while the task is preparing or running
 * and has a start. */
export function durationView(task) {
  const node = el("span", { class: "duration", "data-started-at": task.started_at || null });
  if (ACTIVE.has(task.status_text) && task.started_at && !task.finished_at) {
    node.classList.add("live");
    counting.set(node, new Date(task.started_at).getTime());
    node.textContent = format.elapsed(format.duration(task));
    if (timer === null) timer = window.setInterval(tick, TICK_MS);
  } else {
    // A pending task may carry the start of an attempt that was given back: no duration yet.
    node.textContent = task.finished_at ? format.seconds(format.duration(task)) : "—";
  }
  return node;
}

/** Stop a duration counting (its task finished); it keeps the last value it showed. */
export function stopCounting(node) {
  counting.delete(node);
  node.classList.remove("live");
}
