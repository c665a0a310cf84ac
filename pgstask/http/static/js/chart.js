// The dashboard's chart of finished tasks over time, drawn as inline SVG: stacked bars per
// bucket (completed, failed, cancelled) on the left axis, the average duration as a line on the
// right axis. Built with DOM calls like the rest of the page; no library.

import { el, svg } from "./dom.js";
import * as format from "./format.js";

const WIDTH = 720;
const HEIGHT = 220;
const PAD = { top: 12, right: 56, bottom: 28, left: 40 };
const SERIES = ["completed", "failed", "cancelled"];

/** A round step for the count axis: 1, 2 or 5 times a power of ten, at most four steps. */
function countStep(max) {
  const power = 10 ** Math.floor(Math.log10(max));
  for (const factor of [0.1, 0.2, 0.5, 1, 2, 5, 10]) {
    const step = Math.max(1, factor * power);
    if (max / step <= 4) return step;
  }
  return 10 * power;
}

/** An <svg> of `points` ({time, completed, failed, cancelled, average_duration}) over the last
 * `hours`, in buckets of `bucketSeconds`. */
export function timelineChart(points, bucketSeconds, hours) {
  // Buckets start at multiples of bucketSeconds since the epoch (as the server groups them);
  // the axis ends where the current bucket ends, so the newest bar stays inside the plot.
  const bucketMs = bucketSeconds * 1000;
  const slots = Math.max(1, Math.ceil((hours * 3600) / bucketSeconds));
  const end = Math.ceil(Date.now() / bucketMs) * bucketMs;
  const start = end - slots * bucketMs;
  const plotW = WIDTH - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  const barW = Math.max(1, plotW / slots - 1);
  const x = (t) => PAD.left + ((t - start) / (end - start)) * plotW;
  const most = Math.max(1, ...points.map((p) => p.completed + p.failed + p.cancelled));
  const step = countStep(most);
  const maxCount = step * Math.ceil(most / step);
  const maxDuration = Math.max(0.001, ...points.map((p) => p.average_duration));
  const yCount = (n) => PAD.top + plotH - (n / maxCount) * plotH;
  const yDuration = (s) => PAD.top + plotH - (s / maxDuration) * plotH;

  const total = points.reduce((n, p) => n + p.completed + p.failed + p.cancelled, 0);
  const chart = svg("svg", {
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
    role: "img",
    "aria-label": `${total} tasks finished in the last ${hours} hours`,
    class: "timeline",
  });

  // Axes and gridlines: counts on the left, durations on the right, times below.
  for (let count = 0; count <= maxCount; count += step) {
    const y = yCount(count);
    const fraction = count / maxCount;
    chart.append(
      svg("line", { x1: PAD.left, x2: WIDTH - PAD.right, y1: y, y2: y, class: "grid" }),
      svg("text", { x: PAD.left - 6, y: y + 4, class: "axis left" }, String(count)),
      svg("text", { x: WIDTH - PAD.right + 6, y: y + 4, class: "axis right" },
        points.length && fraction ? format.seconds(fraction * maxDuration) : ""),
    );
  }
  for (const fraction of [0, 0.25, 0.5, 0.75, 1]) {
    const t = start + fraction * (end - start);
    chart.append(svg("text", { x: x(t), y: HEIGHT - 8, class: "axis time" }, format.clock(t)));
  }

  const line = [];
  for (const point of points) {
    const t = new Date(point.time).getTime();
    const left = x(t);
    let base = 0;
    for (const series of SERIES) {
      const n = point[series];
      if (!n) continue;
      const bar = svg("rect", {
        x: left, width: barW, y: yCount(base + n), height: yCount(base) - yCount(base + n),
        class: `bar ${series}`,
      });
      bar.append(svg("title", {}, `${format.clock(t)}: ${n} ${series}`));
      chart.append(bar);
      base += n;
    }
    line.push(`${(left + barW / 2).toFixed(1)},${yDuration(point.average_duration).toFixed(1)}`);
  }
  if (line.length) {
    chart.append(svg("polyline", { points: line.join(" "), class: "duration" }));
    for (const xy of line) {
      const [cx, cy] = xy.split(",");
      chart.append(svg("circle", { cx, cy, r: 2.5, class: "duration-dot" }));
    }
  }

  const legend = el("p", { class: "legend" },
    ...SERIES.map((s) => el("span", { class: `key ${s}` }, s)),
    el("span", { class: "key duration" }, "average duration"),
  );
  return [chart, legend];
}
