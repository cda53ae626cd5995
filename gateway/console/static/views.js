// Renders each console section from its JSON document (see gateway/console/api.py).
// Every function rebuilds its section; the test and the operator read the same DOM.

import { lines, stackedBars } from "./charts.js";
import {
  bar, bytes, clock, count, duration, fillLevel, h, percent, rate, signedPercent,
} from "./format.js";

const CLASS_COLORS = {
  put_copy_post_list: "#4f8cff", get_head: "#35c2a1", delete: "#f0a13c", other: "#a57cf0",
};
const CLASS_NAMES = {
  put_copy_post_list: "PUT/COPY/POST/LIST", get_head: "GET/HEAD", delete: "DELETE",
  other: "other",
};

function dot(health) {
  return h("span", { class: `dot ${health}`, title: health });
}

function stat(label, value, extra = "") {
  return h("div", { class: `stat ${extra}` }, h("div", { class: "stat-value" }, value),
    h("div", { class: "stat-label" }, label));
}

// -- summary ---------------------------------------------------------------------------

export function summary(cluster, rebalance, errors) {
  const s = cluster.summary;
  const used = s.used_bytes;
  const all = s.used_bytes + s.free_bytes;
  const total = rebalance ? rebalance.total : null;
  return [
    stat("nodes up", `${s.nodes_up} / ${s.nodes}`, s.nodes_up < s.nodes ? "bad" : "ok"),
    stat("devices up", `${s.devices_up} / ${s.devices}`,
      s.devices_up < s.devices ? "bad" : "ok"),
    stat(`stored of ${bytes(all)}`, bytes(used), fillLevel(all ? used / all : 0)),
    stat("rebalance", total ? `${total.phase} ${percent(total.percent, 0)}` : "…",
      total && total.phase === "unreachable" ? "bad" : ""),
    stat("warnings", String(cluster.warnings.length), cluster.warnings.length ? "warn" : "ok"),
    stat("errors seen", count(errors ? errors.total : 0), ""),
  ];
}

// -- cluster map -----------------------------------------------------------------------

function deviceRow(d) {
  const all = d.used_bytes + d.free_bytes;
  return h("div", { class: "device", data: { deviceId: d.id, health: d.health } },
    h("div", { class: "device-head" }, dot(d.health),
      h("span", { class: "device-name" }, `${d.name} · #${d.id}`),
      h("span", { class: "muted" }, `${count(d.fragments)} fragments`)),
    bar(d.fill, d.health === "up" ? fillLevel(d.fill) : "off"),
    h("div", { class: "device-foot muted" },
      d.health === "up" ? `${bytes(d.used_bytes)} used · ${bytes(d.free_bytes)} free`
        : d.health,
      all ? ` · ${percent(100 * d.fill, 0)}` : ""));
}

function nodeCard(n) {
  return h("div", { class: `node ${n.health}`, data: { addr: n.addr, health: n.health } },
    h("div", { class: "node-head" }, dot(n.health), h("strong", {}, n.name),
      h("span", { class: "muted mono" }, n.addr)),
    n.devices.map(deviceRow));
}

export function clusterMap(cluster) {
  const regions = cluster.regions.map((r) => h("div", { class: "region" },
    h("div", { class: "region-name" }, `region ${r.name}`),
    h("div", { class: "zones" }, r.zones.map((z) => h("div", { class: "zone" },
      h("div", { class: "zone-name" }, `zone ${z.name}`),
      h("div", { class: "nodes" }, z.nodes.map(nodeCard)))))));
  const gateways = h("div", { class: "gateways muted" }, "gateways: ",
    cluster.gateways.map((g) => h("span", { class: "gateway mono" }, dot(g.health), g.addr,
      " ", Object.entries(g.rings).map(([n, v]) => `${n} v${v}`).join(", "))));
  const warnings = cluster.warnings.length
    ? h("ul", { class: "warnings" }, cluster.warnings.map((w) => h("li", {}, w)))
    : null;
  return [warnings, ...regions, gateways];
}

// -- rebalance -------------------------------------------------------------------------

function phaseBadge(phase) {
  return h("span", { class: `badge ${phase}` }, phase);
}

// addr -> node name (from the cluster map), for rows that would otherwise be bare addresses.
export function nodeNames(cluster) {
  const names = {};
  for (const r of cluster.regions) {
    for (const z of r.zones) for (const n of z.nodes) names[n.addr] = n.name;
  }
  return names;
}

export function rebalanceView(doc, names = {}) {
  const t = doc.total;
  const head = h("div", { id: "rebalance-total", class: "rebalance-total",
    data: { phase: t.phase, percent: t.percent.toFixed(1), unitsTotal: t.units_total } },
  h("div", { class: "rebalance-line" }, phaseBadge(t.phase),
    h("strong", { class: "big" }, percent(t.percent)),
    h("span", { class: "muted" },
      `${bytes(t.bytes_moved)} moved · ${bytes(t.bytes_left)} left · ${rate(t.rate_bytes_per_s)}`
      + ` · ETA ${t.phase === "done" ? "—" : duration(t.eta_s)}`
      + ` · units ${count(t.units_done)}/${count(t.units_total)} · ${t.errors} errors`)),
  bar(t.percent / 100, t.phase === "done" ? "ok" : "run"));
  const rows = doc.nodes.map((n) => h("tr", { data: { addr: n.addr, phase: n.phase } },
    h("td", {}, h("strong", {}, names[n.addr] || ""), " ", h("span", { class: "mono muted" }, n.addr)),
    h("td", {}, phaseBadge(n.phase)),
    h("td", { class: "wide" }, bar(n.percent / 100, n.phase === "done" ? "ok" : "run")),
    h("td", { class: "num" }, percent(n.percent, 0)),
    h("td", { class: "num" }, `${count(n.units_done)}/${count(n.units_total)}`),
    h("td", { class: "num" }, bytes(n.bytes_moved)), h("td", { class: "num" }, bytes(n.bytes_left)),
    h("td", { class: "num" }, rate(n.rate_bytes_per_s)),
    h("td", { class: "num" }, n.phase === "done" ? "—" : duration(n.eta_s)),
    h("td", { class: "num" }, String(n.errors))));
  return [head, h("table", {},
    h("thead", {}, h("tr", {}, ["node", "state", "progress", "", "units", "moved", "left",
      "rate", "ETA", "errors"].map((c) => h("th", {}, c)))),
    h("tbody", {}, rows))];
}

// -- ring balance ----------------------------------------------------------------------

// A bar centred on zero: right for over its share, left for under, full at +-span %.
function divergingBar(over, span = 10) {
  const f = Math.min(1, Math.abs(over) / span) * 50;
  const side = over >= 0 ? { left: "50%", width: `${f}%` } : { left: `${50 - f}%`, width: `${f}%` };
  const level = Math.abs(over) > 5 ? "bad" : Math.abs(over) > 2 ? "warn" : "ok";
  return h("div", { class: `bar diverging ${level}` },
    h("div", { class: "bar-fill", style: side }), h("div", { class: "bar-zero" }));
}

const FINDINGS_SHOWN = 2;

// `coffre ring validate`'s findings: the first few, the rest folded away.
function findingsList(findings) {
  const item = (f) => h("li", { class: f.severity }, `${f.severity}: ${f.check}: ${f.message}`);
  const rest = findings.slice(FINDINGS_SHOWN);
  return h("div", { class: "findings" },
    h("ul", {}, findings.slice(0, FINDINGS_SHOWN).map(item)),
    rest.length ? h("details", {}, h("summary", {}, `${rest.length} more findings`),
      h("ul", {}, rest.map(item))) : null);
}

function ringCard(r) {
  const findings = r.findings.length ? findingsList(r.findings)
    : h("div", { class: "muted findings" }, "valid: no findings");
  return h("div", { class: "ring", data: { ring: r.name } },
    h("div", { class: "ring-head" }, h("strong", {}, `${r.name} v${r.version}`),
      h("span", { class: "muted" },
        `${count(r.partitions)} partitions × ${r.width} · ${r.devices.length} devices · `
        + `over ${signedPercent(r.max_over_percent)} / under ${signedPercent(r.max_under_percent)}`
        + (r.moved_partitions ? ` · ${r.moved_partitions} partitions moving` : ""))),
    h("table", { class: "compact" },
      h("thead", {}, h("tr", {}, ["dev", "node", "domain", "weight", "slots", "share",
        "balance", ""].map((c) => h("th", {}, c)))),
      h("tbody", {}, r.devices.map((d) => h("tr", {},
        h("td", { class: "num" }, `#${d.id}`), h("td", { class: "mono" }, d.addr),
        h("td", { class: "mono" }, d.domain), h("td", { class: "num" }, String(d.weight)),
        h("td", { class: "num" }, count(d.slots)),
        h("td", { class: "num" }, d.share_slots.toFixed(1)),
        h("td", { class: "wide" }, divergingBar(d.over_percent)),
        h("td", { class: "num" }, signedPercent(d.over_percent)))))),
    findings);
}

export function ringsView(doc) {
  return doc.rings.map(ringCard);
}

// -- usage -----------------------------------------------------------------------------

function hourLabel(iso) {
  return iso.slice(11, 16);
}

function chartBox(title, legend) {
  const canvas = h("canvas", { class: "chart" });
  return [canvas, h("div", { class: "chart-box" },
    h("div", { class: "chart-title" }, title,
      h("span", { class: "legend" }, legend.map(([name, color]) => h("span", {},
        h("i", { style: { background: color } }), name)))),
    canvas)];
}

export function usageView(doc, selected, onSelect) {
  if (!doc.tenants.length) return [h("div", { class: "muted" }, "no tenant yet")];
  const tenant = doc.tenants.find((t) => t.tenant === selected) || doc.tenants[0];
  const tabs = h("div", { class: "tabs" }, doc.tenants.map((t) => {
    const tab = h("button", { class: t === tenant ? "tab active" : "tab", type: "button",
      data: { tenant: t.tenant } }, t.tenant);
    tab.addEventListener("click", () => onSelect(t.tenant));
    return tab;
  }));
  const labels = doc.hours.map(hourLabel);
  const tot = tenant.total;
  const reqs = Object.values(tot.requests).reduce((a, b) => a + b, 0);
  const totals = h("div", { class: "usage-totals muted" },
    `last ${doc.hours.length} h: ${count(reqs)} requests · ${bytes(tot.bytes_in)} in · `
    + `${bytes(tot.bytes_out)} out · ${bytes(tot.byte_hours)}·h stored`
    + (tenant.buckets.length ? ` · buckets: ${tenant.buckets.join(", ")}` : ""));
  const [reqCanvas, reqBox] = chartBox("requests per hour",
    doc.classes.map((c) => [CLASS_NAMES[c], CLASS_COLORS[c]]));
  const [ioCanvas, ioBox] = chartBox("bytes per hour", [["in", "#4f8cff"], ["out", "#35c2a1"]]);
  const [stCanvas, stBox] = chartBox("stored (byte-hours; current hour partial)",
    [["stored", "#f0a13c"]]);
  const draw = () => {
    stackedBars(reqCanvas, labels, doc.classes.map((c) => ({ name: c, color: CLASS_COLORS[c],
      values: tenant.requests[c] })), (v) => count(Math.round(v)));
    lines(ioCanvas, labels, [{ name: "in", color: "#4f8cff", values: tenant.bytes_in },
      { name: "out", color: "#35c2a1", values: tenant.bytes_out }], bytes);
    stackedBars(stCanvas, labels, [{ name: "stored", color: "#f0a13c",
      values: tenant.byte_hours }], bytes);
  };
  return [tabs, totals, h("div", { class: "charts" }, reqBox, ioBox, stBox), draw];
}

// -- recent errors ---------------------------------------------------------------------

export function errorsView(doc) {
  if (!doc.events.length) return [h("div", { class: "muted" }, "no error since the gateway started")];
  return [h("table", { class: "compact" },
    h("thead", {}, h("tr", {}, ["time (UTC)", "source", "request id", "operation", "code",
      "status", "message"].map((c) => h("th", {}, c)))),
    h("tbody", {}, doc.events.map((e) => h("tr", { class: e.status >= 500 || e.code === "ERROR" ? "bad" : "" },
      h("td", { class: "mono" }, clock(e.time_ms)), h("td", {}, e.source),
      h("td", { class: "mono" }, e.request_id || "—"), h("td", {}, e.operation),
      h("td", { class: "mono" }, e.code), h("td", { class: "num" }, e.status || ""),
      h("td", { class: "message" }, e.message)))))];
}
