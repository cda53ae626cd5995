// Number formatting and DOM building for the console. No data ever goes through innerHTML:
// every text lands in textContent, so a bucket or tenant name cannot become markup.

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

export function bytes(n) {
  let value = Number(n) || 0;
  let i = 0;
  while (Math.abs(value) >= 1024 && i < UNITS.length - 1) {
    value /= 1024;
    i += 1;
  }
  return i === 0 ? `${value} B` : `${value.toFixed(value < 10 ? 2 : 1)} ${UNITS[i]}`;
}

export function rate(bytesPerSecond) {
  return `${bytes(bytesPerSecond)}/s`;
}

export function percent(p, digits = 1) {
  return `${(Number(p) || 0).toFixed(digits)} %`;
}

export function signedPercent(p) {
  const v = Number(p) || 0;
  return `${v >= 0 ? "+" : ""}${v.toFixed(2)} %`;
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "unknown";
  let s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  s %= 60;
  return h > 0 ? `${h} h ${m} min` : `${m} min ${s} s`;
}

export function count(n) {
  return (Number(n) || 0).toLocaleString("en-US");
}

export function clock(timeMs) {
  return new Date(timeMs).toISOString().replace("T", " ").slice(0, 19);
}

// h("div", {class: "x", data: {addr: "a"}}, "text", child, ...) -> an element.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "data") {
      for (const [k, v] of Object.entries(value)) el.dataset[k] = String(v);
    } else if (key === "style") {
      for (const [k, v] of Object.entries(value)) el.style.setProperty(k, v);
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

// A horizontal bar filled to `fraction` (0..1), with a level class for its colour.
export function bar(fraction, level = "") {
  const f = Math.max(0, Math.min(1, Number(fraction) || 0));
  return h("div", { class: `bar ${level}` },
    h("div", { class: "bar-fill", style: { width: `${(f * 100).toFixed(1)}%` } }));
}

export function fillLevel(fraction) {
  if (fraction >= 0.9) return "bad";
  if (fraction >= 0.75) return "warn";
  return "ok";
}
