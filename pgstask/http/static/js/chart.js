// The dashboard's chart of finished tasks over time, drawn as inline SVG: stacked bars per
// bucket (completed, failed, cancelled) on the left axis, the average duration as a line on the
// right axis, local times and dates below. Built with DOM calls like the rest of the page; no
// library. It is drawn at the width of its box, so its text keeps its size on a phone.

import { el, svg } from "./dom.js";
import * as format from "./format.js";

const DEFAULT_WIDTH = 720;
const MIN_WIDTH = 280;
const HEIGHT = 232;
const PAD = { top: 12, right: 56, bottom: 40, left: 40 };
const SERIES = ["completed", "failed", "cancelled"];
const MINUTE = 60_000;
const DAY_MINUTES = 1440;
// Steps of the time axis, in minutes; the smallest that leaves room for every label is taken.
const TIME_STEPS = [5, 10, 15, 30, 60, 120, 180, 360, 720, DAY_MINUTES, 2 * DAY_MINUTES,
  7 * DAY_MINUTES];
const LABEL_SPACE = 76; // pixels a tick's label needs ("Sat, Dec 5")

/** A round step for the count axis: 1, 2 or 5 times a power of ten, at most four steps. */
function countStep(max) {
  const power = 10 ** Math.floor(Math.log10(max));
  for (const factor of [0.1, 0.2, 0.5, 1, 2, 5, 10]) {
    const step = Math.max(1, factor * power);
    if (max / step <= 4) return step;
  }
  return 10 * power;
}

/**
 * Ticks of the time axis between `start` and `end` (ms): round local times (every 3 hours, say,
 * from local midnight) or local midnights for a range of days, at most one per LABEL_SPACE
 * pixels of `plotWidth`. Each is {time, label, date}: `date` is set on the first tick and
 * wherever the day changes, so every day on the axis is named once.
 */
export function timeTicks(start, end, plotWidth) {
  const room = Math.max(2, Math.floor(plotWidth / LABEL_SPACE));
  const rangeMinutes = (end - start) / MINUTE;
  const step = TIME_STEPS.find((s) => rangeMinutes / s <= room) || TIME_STEPS.at(-1);
  const times = [];
  const first = new Date(start);
  first.setHours(0, 0, 0, 0); // local midnight of the first day
  for (let k = 0; times.length <= room + 1; k += 1) {
    const tick = new Date(first);
    if (step >= DAY_MINUTES) tick.setDate(first.getDate() + (k * step) / DAY_MINUTES);
    else tick.setHours(0, k * step); // local clock times, also across a DST change
    const t = tick.getTime();
    if (t > end) break;
    if (t >= start && (!times.length || t > times.at(-1))) times.push(t);
  }
  let lastDay = null;
  return times.map((time) => {
    const day = format.day(time);
    const named = day !== lastDay;
    lastDay = day;
    if (step >= DAY_MINUTES) return { time, label: day, date: null };
    return { time, label: format.clock(time), date: named ? day : null };
  });
}

/** An <svg> of `points` ({time, completed, failed, cancelled, average_duration}) over the last
 * `hours`, in buckets of `bucketSeconds`, `width` pixels wide (its box's width). */
export function timelineChart(points, bucketSeconds, hours, boxWidth) {
  const width = Math.max(MIN_WIDTH, Math.round(boxWidth || DEFAULT_WIDTH));
  // Buckets start at multiples of bucketSeconds since the epoch (as the server groups them);
  // the axis ends where the current bucket ends, so the newest bar stays inside the plot.
  const bucketMs = bucketSeconds * 1000;
  const slots = Math.max(1, Math.ceil((hours * 3600) / bucketSeconds));
  const end = Math.ceil(Date.now() / bucketMs) * bucketMs;
  const start = end - slots * bucketMs;
  const plotW = width - PAD.left - PAD.right;
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
    viewBox: `0 0 ${width} ${HEIGHT}`,
    role: "img",
    "aria-label": `${total} tasks finished in the last ${hours} hours`,
    class: "timeline",
  });

  // Axes and gridlines: counts on the left, durations on the right, times below.
  for (let count = 0; count <= maxCount; count += step) {
    const y = yCount(count);
    const fraction = count / maxCount;
    chart.append(
      svg("line", { x1: PAD.left, x2: width - PAD.right, y1: y, y2: y, class: "grid" }),
      svg("text", { x: PAD.left - 6, y: y + 4, class: "axis left" }, String(count)),
      svg("text", { x: width - PAD.right + 6, y: y + 4, class: "axis right" },
        points.length && fraction ? format.seconds(fraction * maxDuration) : ""),
    );
  }
  for (const tick of timeTicks(start, end, plotW)) {
    const label = svg("text", {
      x: x(tick.time), y: HEIGHT - PAD.bottom + 14, class: "axis time",
      "data-time": new Date(tick.time).toISOString(),
    }, tick.label);
    if (tick.date) {
      label.append(svg("tspan", { x: x(tick.time), dy: 13, class: "date" }, tick.date));
    }
    chart.append(
      svg("line", {
        x1: x(tick.time), x2: x(tick.time), y1: PAD.top + plotH, y2: PAD.top + plotH + 4,
        class: "tick",
      }),
      label,
    );
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
      bar.append(svg("title", {}, `${format.day(t)} ${format.clock(t)}: ${n} ${series}`));
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
