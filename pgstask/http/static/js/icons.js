// Worker icons: a small built-in set drawn as inline SVG (24 × 24, stroked in the text colour),
// so the page needs no icon font, no image file and no network. A worker's `icon` is free
// text: a name of this set ("play", "file"), an alias of one ("cube", "envelope"), or an icon
// font's markup or class ('<i class="fa fa-cube"></i>', "fa-solid fa-envelope"), of which the
// names are read and matched. Anything else gets the default icon.

import { svg } from "./dom.js";

// Each icon is a list of [tag, attributes] drawn inside a 24 × 24 box.
const path = (d) => ["path", { d }];
const circle = (cx, cy, r) => ["circle", { cx, cy, r }];
const rect = (x, y, width, height, rx) => ["rect", { x, y, width, height, rx }];

const ICONS = {
  default: [ // a chip, for any worker whose icon is not in this set
    rect(6, 6, 12, 12, 2),
    rect(9.5, 9.5, 5, 5, 0.5),
    path("M9.5 2.5V6M14.5 2.5V6M9.5 18v3.5M14.5 18v3.5"),
    path("M2.5 9.5H6M2.5 14.5H6M18 9.5h3.5M18 14.5h3.5"),
  ],
  play: [circle(12, 12, 9.5), path("M10 8.2v7.6l6-3.8z")],
  file: [
    path("M14 3H7a2 2 0 0 0-2 2v14a2 2 0 0 0 2 2h10a2 2 0 0 0 2-2V8z"),
    path("M14 3v5h5M9 13h6M9 17h6"),
  ],
  box: [
    path("M12 2.8 3.5 7.2v9.6l8.5 4.4 8.5-4.4V7.2z"),
    path("M3.5 7.2 12 11.6l8.5-4.4M12 11.6v9.6"),
  ],
  mail: [rect(3, 5, 18, 14, 2), path("m3.5 7 8.5 6 8.5-6")],
  database: [
    ["ellipse", { cx: 12, cy: 5.5, rx: 8, ry: 2.8 }],
    path("M4 5.5v13c0 1.5 3.6 2.8 8 2.8s8-1.3 8-2.8v-13M4 12c0 1.5 3.6 2.8 8 2.8s8-1.3 8-2.8"),
  ],
  clock: [circle(12, 12, 9.5), path("M12 7v5l3.5 2")],
  upload: [path("M4 15v4a1 1 0 0 0 1 1h14a1 1 0 0 0 1-1v-4M12 16V4m-5 5 5-5 5 5")],
  download: [path("M4 15v4a1 1 0 0 0 1 1h14a1 1 0 0 0 1-1v-4M12 4v12m-5-5 5 5 5-5")],
  image: [rect(3, 4, 18, 16, 2), circle(8.5, 9.5, 1.6), path("m20.5 15.5-5-5L6 20")],
  chart: [path("M4 20h16M7 16v-5M12 16V6M17 16V9")],
  user: [circle(12, 8, 4), path("M4 21c0-4 3.6-7 8-7s8 3 8 7")],
  users: [
    circle(9, 8, 3.5),
    path("M2 21c0-3.6 3.1-6 7-6s7 2.4 7 6M16 4.6a3.5 3.5 0 0 1 0 6.8"),
    path("M18.5 15.3c2 .7 3.5 2.8 3.5 5.7"),
  ],
  gear: [
    circle(12, 12, 3),
    path("M12 2.5v3M12 18.5v3M2.5 12h3M18.5 12h3M5.3 5.3l2.1 2.1M16.6 16.6l2.1 2.1M5.3 18.7"
      + "l2.1-2.1M16.6 7.4l2.1-2.1"),
    circle(12, 12, 6.5),
  ],
  bell: [path("M6 16v-5a6 6 0 0 1 12 0v5l2 2H4z"), path("M10 21h4")],
  globe: [
    circle(12, 12, 9.5),
    ["ellipse", { cx: 12, cy: 12, rx: 4, ry: 9.5 }],
    path("M2.5 12h19"),
  ],
  search: [circle(11, 11, 7), path("m20.5 20.5-4.5-4.5")],
  refresh: [
    path("M20 11A8 8 0 0 0 5.6 6.4L4 8M4 3.5V8h4.5"),
    path("M4 13a8 8 0 0 0 14.4 4.6L20 16M20 20.5V16h-4.5"),
  ],
  trash: [path("M4 7h16M9.5 7V4h5v3M6 7l1 13h10l1-13M10 11v5M14 11v5")],
  link: [
    path("M10 14a4 4 0 0 0 5.7 0l3-3a4 4 0 0 0-5.7-5.7l-1 1"),
    path("M14 10a4 4 0 0 0-5.7 0l-3 3a4 4 0 0 0 5.7 5.7l1-1"),
  ],
  lock: [rect(5, 11, 14, 10, 2), path("M8 11V7.5a4 4 0 0 1 8 0V11")],
  cart: [path("M2.5 4h2.3l2.4 11h10.6l2-8H6"), circle(9, 19.5, 1.5), circle(17, 19.5, 1.5)],
  calendar: [rect(3, 5, 18, 16, 2), path("M3 10h18M8 3v4M16 3v4")],
  code: [path("m8.5 7-5 5 5 5M15.5 7l5 5-5 5")],
  terminal: [rect(3, 4, 18, 16, 2), path("m7 9.5 3 2.5-3 2.5M13 15h4")],
  cloud: [path("M7 19a4.5 4.5 0 0 1-.6-9A6 6 0 0 1 18 11a4 4 0 0 1-.5 8z")],
  send: [path("M21 3 10 14M21 3l-6.5 18-4.5-7-7-4.5z")],
  bolt: [path("M13.5 2.5 4.5 14h7l-1 7.5 9-11.5h-7z")],
  list: [path("M9 6h11M9 12h11M9 18h11M4.5 6h.01M4.5 12h.01M4.5 18h.01")],
  folder: [path("M3 7a2 2 0 0 1 2-2h4l2 2.5h8a2 2 0 0 1 2 2V17a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2z")],
  truck: [
    path("M2.5 5.5h11.5V16H2.5zM14 9.5h4l3 3.5V16h-7"),
    circle(6.5, 18, 2),
    circle(17, 18, 2),
  ],
  card: [rect(2.5, 5, 19, 14, 2), path("M2.5 10h19M6 15h4")],
  home: [path("M3 11.5 12 4l9 7.5M5.5 9.5V20h13V9.5M10 20v-5h4v5")],
  tag: [path("M3 12V4a1 1 0 0 1 1-1h8l9 9-9 9z"), circle(7.5, 7.5, 1.5)],
};

// Other names for the same pictures, including the usual icon-font names.
const ALIASES = {
  "play-circle": "play", start: "play", run: "play", demo: "play",
  document: "file", "file-o": "file", "file-text": "file", "file-text-o": "file",
  "file-lines": "file", "file-alt": "file", "file-csv": "file", report: "file", csv: "file",
  cube: "box", cubes: "box", package: "box", archive: "box", product: "box", "box-open": "box",
  envelope: "mail", "envelope-o": "mail", email: "mail", at: "mail", inbox: "mail",
  server: "database", db: "database", storage: "database", hdd: "database",
  time: "clock", "clock-o": "clock", schedule: "clock", hourglass: "clock", timer: "clock",
  "cloud-upload": "upload", import: "upload", "cloud-download": "download", export: "download",
  picture: "image", photo: "image", "image-o": "image", images: "image",
  "bar-chart": "chart", "chart-bar": "chart", "line-chart": "chart", "chart-line": "chart",
  stats: "chart", analytics: "chart", "chart-simple": "chart",
  person: "user", "user-o": "user", account: "user", group: "users", people: "users",
  cog: "gear", cogs: "gear", gears: "gear", settings: "gear", wrench: "gear", tools: "gear",
  notification: "bell", alert: "bell", "bell-o": "bell",
  world: "globe", earth: "globe", web: "globe", language: "globe", internet: "globe",
  magnifier: "search", "magnifying-glass": "search", find: "search",
  sync: "refresh", rotate: "refresh", redo: "refresh", repeat: "refresh",
  "arrows-rotate": "refresh",
  "trash-o": "trash", "trash-can": "trash", delete: "trash", remove: "trash", clean: "trash",
  chain: "link", key: "lock", shield: "lock", security: "lock",
  "shopping-cart": "cart", "cart-shopping": "cart", shop: "cart", store: "cart", order: "cart",
  "calendar-o": "calendar", date: "calendar", "calendar-days": "calendar",
  html: "code", "file-code": "code", shell: "terminal", console: "terminal",
  "paper-plane": "send", share: "send", flash: "bolt", zap: "bolt", lightning: "bolt",
  tasks: "list", "list-ul": "list", "list-check": "list", queue: "list",
  "folder-o": "folder", "folder-open": "folder", directory: "folder",
  shipping: "truck", delivery: "truck", "credit-card": "card", money: "card", payment: "card",
  dollar: "card", invoice: "card", house: "home", tags: "tag", label: "tag",
};

// Class words of icon fonts that name a style, not a picture.
const STYLE_WORDS = new Set([
  "fa", "fas", "far", "fab", "fal", "fad", "solid", "regular", "light", "thin", "duotone",
  "brands", "fw", "lg", "xs", "sm", "2x", "3x", "o", "icon", "bi", "mdi", "glyphicon", "i",
]);

/** The name in the built-in set that a worker's `icon` text stands for ("default" if none). */
export function iconName(text) {
  const value = String(text || "").trim().toLowerCase();
  if (!value) return "default";
  // Words of the text: a class list or markup gives "fa-cube" → "cube", "bi-envelope" → ….
  const words = value.match(/[a-z0-9]+(?:-[a-z0-9]+)*/g) || [];
  for (const word of [value, ...words]) {
    const found = lookup(word);
    if (found) return found;
    const prefixed = /^(?:fa|fas|far|bi|mdi|glyphicon|icon|ti|ri)-(.+)$/.exec(word);
    if (prefixed && !STYLE_WORDS.has(prefixed[1])) {
      const inner = lookup(prefixed[1]);
      if (inner) return inner;
    }
  }
  return "default";
}

function lookup(word) {
  if (Object.hasOwn(ICONS, word) && word !== "default") return word;
  if (Object.hasOwn(ALIASES, word)) return ALIASES[word];
  return null;
}

/** The <svg> of a worker's icon, labelled with what the worker declared. */
export function workerIcon(text) {
  const name = iconName(text);
  const icon = svg("svg", {
    viewBox: "0 0 24 24",
    width: "22",
    height: "22",
    fill: "none",
    stroke: "currentColor",
    "stroke-width": "1.8",
    "stroke-linecap": "round",
    "stroke-linejoin": "round",
    "aria-hidden": "true",
    focusable: "false",
    "data-icon": name,
  });
  for (const [tag, attrs] of ICONS[name]) icon.append(svg(tag, attrs));
  return icon;
}

/** Every name of the built-in set (for the docs and tests). */
export const ICON_NAMES = Object.keys(ICONS).filter((name) => name !== "default");
