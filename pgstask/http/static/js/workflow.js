// The workflow view (#workflow/<id>): the tasks joined to a task by dependencies, drawn as a
// graph in inline SVG. Layered by depth: a task without parents in the workflow is on the top
// row, every other one row below its deepest parent; edges run from parent to child. Nodes are
// coloured by status (the badges' colours) and link to the task. Refreshed every two seconds
// while shown: when only statuses changed the nodes are recoloured in place, else redrawn.

import * as api from "./api.js";
import { byId, el, fill, svg } from "./dom.js";
import { statusBadge } from "./tasklist.js";

const REFRESH_MS = 2000;
const NODE = { width: 176, height: 48 };
const GAP = { x: 24, y: 56 };
const PAD = 16;
const LABEL = 22; // characters of a node's action shown; the tooltip has all of it
const ORDER = ["waiting", "pending", "preparing", "running", "completed", "failed", "cancelled"];

/** Depth of every task (tasks by id: a task only depends on older ones, so parents come
 * first) and its parents, from the edges. */
export function layers(tasks, edges) {
  const parents = new Map(tasks.map((t) => [t.id, []]));
  for (const edge of edges) {
    if (parents.has(edge.task_id) && parents.has(edge.parent_id)) {
      parents.get(edge.task_id).push(edge.parent_id);
    }
  }
  const depth = new Map();
  const rows = [];
  for (const task of [...tasks].sort((a, b) => a.id - b.id)) {
    const above = parents.get(task.id).map((p) => depth.get(p) ?? -1);
    const d = 1 + Math.max(-1, ...above);
    depth.set(task.id, d);
    (rows[d] ||= []).push(task.id);
  }
  // Within a row, each task goes under the middle of its parents (one pass, top down), which
  // keeps most edges short and uncrossed; ties keep the order of ids.
  const column = new Map();
  rows.forEach((row, d) => {
    if (d > 0) {
      const centre = (id) => {
        const xs = parents.get(id).map((p) => column.get(p));
        return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0;
      };
      row.sort((a, b) => centre(a) - centre(b) || a - b);
    }
    row.forEach((id, i) => column.set(id, i - (row.length - 1) / 2));
  });
  return { rows, parents };
}

function short(text) {
  return text.length > LABEL ? `${text.slice(0, LABEL - 1)}…` : text;
}

/** The graph of a workflow: an <svg> with a node per task and a path per edge. */
export function workflowGraph(tasks, edges, currentId) {
  const { rows } = layers(tasks, edges);
  const widest = Math.max(1, ...rows.map((r) => r.length));
  const width = 2 * PAD + widest * (NODE.width + GAP.x) - GAP.x;
  const height = 2 * PAD + rows.length * (NODE.height + GAP.y) - GAP.y;
  const at = new Map();
  rows.forEach((row, d) => {
    const left = PAD + ((widest - row.length) * (NODE.width + GAP.x)) / 2;
    row.forEach((id, i) => {
      at.set(id, { x: left + i * (NODE.width + GAP.x), y: PAD + d * (NODE.height + GAP.y) });
    });
  });
  const byTask = new Map(tasks.map((t) => [t.id, t]));
  const graph = svg("svg", {
    width, height, viewBox: `0 0 ${width} ${height}`, class: "workflow-graph", role: "img",
    "aria-label": `Workflow of ${tasks.length} tasks and ${edges.length} dependencies`,
  });
  graph.append(svg("defs", {}, svg("marker", {
    id: "workflow-arrow", viewBox: "0 0 10 10", refX: 10, refY: 5,
    markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse",
  }, svg("path", { d: "M0,0 L10,5 L0,10 z", class: "arrow" }))));
  for (const edge of edges) {
    const from = at.get(edge.parent_id);
    const to = at.get(edge.task_id);
    if (!from || !to) continue;
    const x1 = from.x + NODE.width / 2;
    const y1 = from.y + NODE.height;
    const x2 = to.x + NODE.width / 2;
    const y2 = to.y;
    const bend = (y2 - y1) / 2;
    graph.append(svg("path", {
      d: `M${x1},${y1} C${x1},${y1 + bend} ${x2},${y2 - bend} ${x2},${y2}`,
      class: `edge from-${byTask.get(edge.parent_id).status_text}`,
      "data-from": edge.parent_id, "data-to": edge.task_id,
      "marker-end": "url(#workflow-arrow)",
    }));
  }
  for (const task of tasks) {
    const { x, y } = at.get(task.id);
    const title = svg("title", {}, `Task ${task.id}: ${task.identifier} · ${task.action}`);
    const node = svg("g", {
      class: `node status-${task.status_text}${task.id === currentId ? " current" : ""}`,
      transform: `translate(${x},${y})`, "data-task-id": task.id,
      "data-status": task.status_text,
    },
    title,
    svg("rect", { width: NODE.width, height: NODE.height, rx: 8 }),
    svg("text", { x: 10, y: 20, class: "label" }, `#${task.id} ${short(task.action)}`),
    svg("text", { x: 10, y: 38, class: "state" }, statusLine(task)));
    graph.append(svg("a", { href: `#task/${task.id}`, "aria-label": `Task ${task.id}` }, node));
  }
  return graph;
}

function statusLine(task) {
  return task.status_text === "waiting" ? `waiting for ${task.waiting_for}` : task.status_text;
}

/** "4 tasks: 1 completed, 3 waiting", each count marked with its status. */
function summary(tasks) {
  const counts = new Map();
  for (const t of tasks) counts.set(t.status_text, (counts.get(t.status_text) || 0) + 1);
  const parts = ORDER.filter((s) => counts.has(s)).map((s) =>
    el("span", { class: "count", "data-status": s }, statusBadge(s), ` ${counts.get(s)}`));
  return [`${tasks.length} task${tasks.length === 1 ? "" : "s"}: `, parts];
}

export class WorkflowView {
  constructor(notify) {
    this.notify = notify;
    this.box = byId("workflow-view");
    this.taskId = null;
    this.timer = null;
    this.shape = null;
  }

  show(taskId) {
    this.taskId = Number(taskId);
    this.shape = null;
    fill(this.box, el("p", { class: "note" }, "Loading…"));
    this.refresh();
  }

  hide() {
    this.taskId = null;
    window.clearTimeout(this.timer);
  }

  async refresh() {
    window.clearTimeout(this.timer);
    const id = this.taskId;
    if (id === null) return;
    try {
      const answer = await api.get(`${api.taskPath(id)}/workflow`);
      if (this.taskId !== id) return;
      this.render(answer);
    } catch (err) {
      this.notify(err.message, "error");
      if (err.status === 404) return;
    }
    if (this.taskId === id) this.timer = window.setTimeout(() => this.refresh(), REFRESH_MS);
  }

  render(answer) {
    const { tasks, edges } = answer;
    const shape = [tasks.map((t) => t.id).join(","),
      edges.map((e) => `${e.parent_id}>${e.task_id}`).join(",")].join("|");
    if (shape === this.shape) {
      this.recolour(tasks);
    } else {
      this.shape = shape;
      fill(
        this.box,
        el("h2", {}, `Workflow of task ${answer.id}`),
        el("div", { class: "buttons" },
          el("a", { class: "button quiet", href: `#task/${answer.id}` }, `Task ${answer.id}`)),
        el("p", { class: "workflow-summary" }, summary(tasks)),
        answer.truncated
          ? el("p", { class: "note" }, `Only the first ${tasks.length} tasks are drawn.`)
          : null,
        el("div", { class: "graph-scroll", id: "workflow-graph" },
          workflowGraph(tasks, edges, answer.id)),
      );
    }
  }

  /** The same tasks and edges: new statuses on the nodes, edges and summary in place. */
  recolour(tasks) {
    const graph = byId("workflow-graph");
    const status = new Map(tasks.map((t) => [t.id, t.status_text]));
    for (const task of tasks) {
      const node = graph.querySelector(`.node[data-task-id="${task.id}"]`);
      if (!node) continue;
      const current = node.classList.contains("current") ? " current" : "";
      node.setAttribute("class", `node status-${task.status_text}${current}`);
      node.dataset.status = task.status_text;
      fill(node.querySelector(".state"), statusLine(task));
    }
    for (const edge of graph.querySelectorAll(".edge")) {
      edge.setAttribute("class", `edge from-${status.get(Number(edge.dataset.from))}`);
    }
    fill(this.box.querySelector(".workflow-summary"), summary(tasks));
  }
}
