// Texts of a task as the page shows them: log records (time, level, message and the context
// as key/value pairs) and texts that span lines, such as a traceback, as preformatted blocks.
// Everything goes in as text (dom.js): a log may hold anything a worker was given.

import { el } from "./dom.js";
import * as format from "./format.js";

/** A preformatted block for a text of several lines, else an inline span. */
export function textBlock(text, className) {
  const value = String(text ?? "");
  if (value.includes("\n")) {
    return el("pre", { class: `text-block ${className || ""}`.trim() }, value.replace(/\n+$/, ""));
  }
  return el("span", { class: className || "message" }, value || "—");
}

function contextValue(value) {
  if (typeof value === "string") return value.includes("\n") ? textBlock(value) : value;
  return el("code", {}, JSON.stringify(value));
}

/** One <li> per log record ({created_at, level, message, context}), oldest first. */
export function logItems(records) {
  if (!records.length) return [el("li", { class: "log-empty" }, "(no log records)")];
  return records.map((record) => {
    // Blocks (tracebacks) after the short values, each group in its stored order.
    const entries = Object.entries(record.context || {});
    const isBlock = ([, value]) => typeof value === "string" && value.includes("\n");
    const context = [...entries.filter((e) => !isBlock(e)), ...entries.filter(isBlock)];
    const level = String(record.level || "info").toLowerCase();
    return el("li", { class: `log-record level-${level}` },
      el("div", { class: "log-head" },
        el("time", { datetime: record.created_at, title: format.dateTime(record.created_at) },
          format.shortDateTime(record.created_at)),
        el("span", { class: "log-level" }, level),
        el("span", { class: "log-message" }, record.message),
      ),
      context.length
        ? el("dl", { class: "log-context" }, context.map(([key, value]) => [
          el("dt", {}, key),
          el("dd", {}, contextValue(value)),
        ]))
        : null,
    );
  });
}
