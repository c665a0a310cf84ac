// How numbers, times and sizes read on the page.

export function dateTime(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  return date.toLocaleString(undefined, {
    year: "numeric", month: "short", day: "numeric",
    hour: "2-digit", minute: "2-digit", second: "2-digit",
  });
}

export function clock(iso) {
  const date = new Date(iso);
  return date.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
}

/** A date without the time ("Sat, Dec 5"), for the chart's axis. */
export function day(iso) {
  const date = new Date(iso);
  return date.toLocaleDateString(undefined, { weekday: "short", month: "short", day: "numeric" });
}

/** A time in a table: the time alone for today, else the date and time (the year only when
 * it is not this year). `dateTime` gives the full form for a tooltip. */
export function shortDateTime(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  const now = new Date();
  const time = { hour: "2-digit", minute: "2-digit", second: "2-digit" };
  if (date.toDateString() === now.toDateString()) return date.toLocaleTimeString(undefined, time);
  const year = date.getFullYear() === now.getFullYear() ? {} : { year: "numeric" };
  return date.toLocaleString(undefined, {
    ...year, month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
  });
}

export function seconds(value) {
  if (value === null || value === undefined) return "—";
  const s = Number(value);
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${Math.round(s % 60)}s`;
  return `${Math.floor(m / 60)}h ${m % 60}m`;
}

/** A time that counts up once a second: whole seconds ("7 s", "2m 05s", "1h 02m"). */
export function elapsed(value) {
  if (value === null || value === undefined) return "—";
  const s = Math.max(0, Math.floor(Number(value)));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, "0")}m`;
}

export function bytes(value) {
  if (!value) return "—";
  const units = ["B", "KiB", "MiB", "GiB"];
  let n = Number(value);
  let unit = 0;
  while (n >= 1024 && unit < units.length - 1) {
    n /= 1024;
    unit += 1;
  }
  return `${n.toFixed(unit ? 1 : 0)} ${units[unit]}`;
}

export function percent(value) {
  return value === null || value === undefined ? "—" : `${Number(value).toFixed(1)} %`;
}

export function json(value) {
  return JSON.stringify(value, null, 2);
}

/** A task's duration in seconds (up to now while it runs), or null before it started. The
 * start is the database's clock and now the browser's: a browser clock behind the server's
 * shows 0 until it catches up. */
export function duration(task, now = Date.now()) {
  if (!task.started_at) return null;
  const end = task.finished_at ? new Date(task.finished_at).getTime() : now;
  return Math.max(0, (end - new Date(task.started_at).getTime()) / 1000);
}
