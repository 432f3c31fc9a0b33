// The /status page (status_page.h): HTML, CSS and JS in one string, no external assets.
//
// The script polls status.json every second (relative URL, so the page also works behind a
// path prefix) and redraws in place. Everything from the server is inserted as text
// (textContent / createTextNode), never as markup, so a label value cannot inject HTML.
// Checkable hooks for tests: #latency-chart has data-points (points drawn for the selected
// method), #latency-histogram has data-bars, <body> has data-samples (polls applied).
#include <string_view>

#include "meshrpc/observe/status_page.h"

namespace meshrpc::observe {

namespace {

constexpr std::string_view kStatusHtml = R"html(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>meshrpc status</title>
<style>
:root {
  --bg: #f4f6f9; --card: #ffffff; --ink: #1c2330; --muted: #6b7585; --line: #e3e7ee;
  --accent: #2f6fdb; --p99: #e8772e; --ok: #1f9d55; --bad: #d64545; --warn: #c98a0b;
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
  font: 14px/1.45 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
header { background: #18202d; color: #e9edf3; padding: 14px 28px; display: flex;
  align-items: center; gap: 24px; flex-wrap: wrap; }
header h1 { font-size: 18px; margin: 0; font-weight: 600; letter-spacing: .2px; }
header h1 span { color: #8fb3ff; }
.facts { display: flex; gap: 18px; flex-wrap: wrap; color: #aeb8c7; font-size: 13px; }
.facts b { color: #e9edf3; font-weight: 500; }
.live { margin-left: auto; font-size: 13px; color: #aeb8c7; display: flex; align-items: center;
  gap: 8px; }
.dot { width: 9px; height: 9px; border-radius: 50%; background: var(--muted); }
.dot.on { background: #3ccf7a; box-shadow: 0 0 0 3px rgba(60,207,122,.25); }
.dot.off { background: var(--bad); box-shadow: 0 0 0 3px rgba(214,69,69,.3); }
main { padding: 20px 28px 40px; max-width: 1400px; margin: 0 auto; }
.tiles { display: grid; grid-template-columns: repeat(auto-fit, minmax(160px, 1fr)); gap: 14px;
  margin-bottom: 18px; }
.tile { background: var(--card); border: 1px solid var(--line); border-radius: 10px;
  padding: 12px 16px; }
.tile .k { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .6px; }
.tile .v { font-size: 24px; font-weight: 600; margin-top: 2px; font-variant-numeric: tabular-nums; }
.tile .v.bad { color: var(--bad); }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 10px;
  padding: 16px 18px; margin-bottom: 18px; }
.card h2 { font-size: 15px; margin: 0 0 12px; font-weight: 600; display: flex; gap: 10px;
  align-items: baseline; }
.card h2 small { color: var(--muted); font-weight: 400; font-size: 12px; }
.charts { display: grid; grid-template-columns: 3fr 2fr; gap: 18px; }
@media (max-width: 900px) { .charts { grid-template-columns: 1fr; } }
.chart-title { font-size: 12px; color: var(--muted); margin-bottom: 4px; display: flex; gap: 14px; }
.legend i { display: inline-block; width: 12px; height: 3px; vertical-align: middle;
  margin-right: 5px; border-radius: 2px; }
svg { width: 100%; height: auto; display: block; }
svg text { font: 11px -apple-system, "Segoe UI", Roboto, Arial, sans-serif; fill: var(--muted); }
table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums;
  table-layout: fixed; }
table.series { table-layout: auto; }
th.first { width: 24%; }
th { text-align: right; font-size: 11px; font-weight: 600; color: var(--muted);
  text-transform: uppercase; letter-spacing: .5px; padding: 6px 10px;
  border-bottom: 1px solid var(--line); white-space: nowrap; }
td { text-align: right; padding: 7px 10px; border-bottom: 1px solid var(--line); white-space: nowrap;
  overflow: hidden; text-overflow: ellipsis; }
th:first-child, td:first-child { text-align: left; }
td.name { font-weight: 500; }
td.labels { text-align: left; color: var(--muted); font-size: 12px; white-space: normal; }
tbody tr:last-child td { border-bottom: none; }
tr.method { cursor: pointer; }
tr.method:hover td { background: #f7f9fc; }
tr.selected td { background: #eef3fd; }
tr.selected td:first-child { box-shadow: inset 3px 0 0 var(--accent); }
.err { color: var(--bad); font-weight: 600; }
.zero { color: #b3bac6; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px;
  font-weight: 600; background: #e8edf5; color: var(--ink); }
.badge.open { background: #fde3e3; color: var(--bad); }
.badge.half_open, .badge.half-open { background: #fdf1d6; color: var(--warn); }
.badge.closed { background: #dcf3e5; color: var(--ok); }
.badge.alive { background: #dcf3e5; color: var(--ok); }
.badge.suspect { background: #fdf1d6; color: var(--warn); }
.badge.dead { background: #fde3e3; color: var(--bad); }
.badge.left { background: #eceff3; color: #555; }
.empty { color: var(--muted); font-size: 13px; padding: 4px 0; }
.grid2 { display: grid; grid-template-columns: 1fr 1fr; gap: 18px; }
@media (max-width: 900px) { .grid2 { grid-template-columns: 1fr; } }
details summary { cursor: pointer; font-weight: 600; font-size: 15px; }
details[open] summary { margin-bottom: 10px; }
</style>
</head>
<body data-samples="0">
<header>
  <h1><span>mesh</span>rpc status</h1>
  <div class="facts" id="facts"></div>
  <div class="live"><div class="dot" id="live-dot"></div><span id="live-text">connecting…</span></div>
</header>
<main>
  <div class="tiles" id="tiles"></div>
  <section class="card">
    <h2>Latency <small id="chart-method">select a method below</small></h2>
    <div class="charts">
      <div>
        <div class="chart-title legend"><span>per refresh interval, up to the last 2 min</span>
          <span><i style="background:var(--accent)"></i>p50</span>
          <span><i style="background:var(--p99)"></i>p99</span></div>
        <svg id="latency-chart" viewBox="0 0 640 230" data-points="0" role="img"
             aria-label="p50 and p99 latency over time"></svg>
      </div>
      <div>
        <div class="chart-title"><span>distribution since start (calls per latency bucket)</span></div>
        <svg id="latency-histogram" viewBox="0 0 440 230" data-bars="0" role="img"
             aria-label="latency distribution"></svg>
      </div>
    </div>
  </section>
  <div id="services"></div>
  <section class="card" id="clients-card"><h2>Outgoing calls <small>meshrpc_client_*</small></h2>
    <div id="clients"></div></section>
  <div class="grid2">
    <section class="card"><h2>Connections</h2><div id="connections"></div></section>
    <section class="card"><h2>Circuit breakers &amp; ejected endpoints</h2>
      <div id="resilience"></div></section>
  </div>
  <section class="card" id="members-card" hidden><h2>Cluster members</h2><div id="members"></div></section>
  <section class="card"><details><summary>Other metrics</summary><div id="other"></div></details></section>
</main>
<script>
"use strict";
const POLL_MS = 1000;
const HISTORY_MS = 120000;
const SVG_NS = "http://www.w3.org/2000/svg";
let current = null;       // the latest sample
let prev = null;          // the one before, for rates and interval percentiles
let samples = 0;
let selected = null;      // method name the charts show
const history = {};       // method -> [{t, p50, p99}]

function el(tag, attrs, ...kids) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "text") node.textContent = v;
    else if (k === "onclick") node.onclick = v;
    else node.setAttribute(k, v);
  }
  for (const kid of kids) node.append(kid);
  return node;
}
function svg(tag, attrs) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "text") node.textContent = v; else node.setAttribute(k, v);
  }
  return node;
}
function fmtDur(s) {
  if (s === null || s === undefined || !isFinite(s)) return "—";
  if (s < 1e-3) return (s * 1e6).toFixed(0) + " µs";
  if (s < 1) return (s * 1e3).toFixed(s < 0.01 ? 2 : 1) + " ms";
  return s.toFixed(2) + " s";
}
function fmtNum(n) {
  if (n === null || n === undefined) return "—";
  if (Math.abs(n) >= 1e9) return (n / 1e9).toFixed(1) + "G";
  if (Math.abs(n) >= 1e6) return (n / 1e6).toFixed(1) + "M";
  if (Math.abs(n) >= 1e4) return (n / 1e3).toFixed(1) + "k";
  return Number.isInteger(n) ? String(n) : n.toFixed(2);
}
function fmtRate(r) { return r === null ? "—" : r < 10 ? r.toFixed(1) : fmtNum(Math.round(r)); }
function fmtUptime(s) {
  s = Math.floor(s);
  const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60;
  if (d) return d + "d " + h + "h"; if (h) return h + "h " + m + "m";
  if (m) return m + "m " + (s % 60) + "s"; return s + "s";
}
function labelText(labels) {
  return Object.entries(labels).map(([k, v]) => k + "=" + v).join("  ");
}
function cell(value, cls) { return el("td", cls ? { class: cls, text: value } : { text: value }); }

// Nearest-rank percentile of [[upper_bound, count], ...].
function percentile(buckets, q) {
  let total = 0;
  for (const b of buckets) total += b[1];
  if (!total) return null;
  const rank = Math.max(1, Math.ceil(q * total));
  let seen = 0;
  for (const b of buckets) { seen += b[1]; if (seen >= rank) return b[0]; }
  return buckets[buckets.length - 1][0];
}
// The calls of `now` not in `before`: bucket counts subtracted.
function bucketDelta(now, before) {
  const old = new Map((before || []).map(b => [b[0], b[1]]));
  return now.map(b => [b[0], b[1] - (old.get(b[0]) || 0)]).filter(b => b[1] > 0);
}

function allMethods(d) {
  const out = [];
  for (const s of d.services) for (const m of s.methods) out.push(m);
  return out;
}
function previousMethod(name) {
  if (!prev) return null;
  return allMethods(prev).find(m => m.method === name) || null;
}
function rateOf(now, before, dt) {
  if (!before || !(dt > 0)) return null;
  return Math.max(0, (now - before) / dt);
}

function recordHistory(d, t) {
  for (const m of allMethods(d)) {
    if (!m.latency || !m.latency.count) continue;
    const old = previousMethod(m.method);
    // The first sample shows everything since start; later ones only their interval.
    const buckets = old && old.latency ? bucketDelta(m.latency.buckets, old.latency.buckets)
                                       : m.latency.buckets;
    if (!buckets.length) continue;
    const points = history[m.method] || (history[m.method] = []);
    points.push({ t, p50: percentile(buckets, 0.5), p99: percentile(buckets, 0.99) });
    while (points.length && points[0].t < t - HISTORY_MS) points.shift();
  }
}

function renderHeader(d) {
  const p = d.process;
  const started = new Date(Date.now() - p.uptime_seconds * 1000);
  const facts = document.getElementById("facts");
  facts.replaceChildren(
    ...[["host", p.host], ["pid", p.pid], ["up", fmtUptime(p.uptime_seconds)],
        ["started", started.toLocaleString()], ["io threads", p.executors],
        ["meshrpc", p.version], ["protocol", "v" + p.protocol_version]]
      .map(([k, v]) => el("span", {}, k + " ", el("b", { text: String(v) }))));
}

function sumSeries(d, re) {
  let total = 0, any = false;
  for (const s of d.series) if (re.test(s.name) && s.value !== null) { total += s.value; any = true; }
  return any ? total : null;
}

function renderTiles(d, dt) {
  let started = 0, finished = 0, errors = 0, inflight = 0, worst = null;
  let prevStarted = 0, prevFinished = 0, prevErrors = 0;
  for (const m of allMethods(d)) {
    started += m.started; finished += m.finished; errors += m.errors; inflight += m.in_flight;
    if (m.latency && m.latency.count && (worst === null || m.latency.p99 > worst)) worst = m.latency.p99;
  }
  if (prev) for (const m of allMethods(prev)) {
    prevStarted += m.started; prevFinished += m.finished; prevErrors += m.errors;
  }
  const rate = prev ? rateOf(started, prevStarted, dt) : null;
  const doneNow = finished - prevFinished;
  // Since the last refresh once there is one (nothing finished in it: "—"), else since start.
  const errPct = prev ? (doneNow > 0 ? 100 * (errors - prevErrors) / doneNow : null)
                      : finished ? 100 * errors / finished : 0;
  const conns = sumSeries(d, /^meshrpc_server_connections_open$/);
  const tiles = [
    ["calls / s", fmtRate(rate)], ["calls total", fmtNum(started)],
    ["error rate", errPct === null ? "—" : errPct.toFixed(errPct && errPct < 1 ? 2 : 1) + " %",
     errPct > 0],
    ["in flight", fmtNum(inflight)], ["worst p99", fmtDur(worst)],
    ["connections", conns === null ? "—" : fmtNum(conns)],
  ];
  document.getElementById("tiles").replaceChildren(...tiles.map(([k, v, bad]) =>
    el("div", { class: "tile" }, el("div", { class: "k", text: k }),
       el("div", { class: bad ? "v bad" : "v", text: v }))));
}

const METHOD_HEAD = ["calls", "calls/s", "errors", "error %", "in flight", "p50", "p90", "p99", "max"];
function methodCells(m, before, dt) {
  const lat = m.latency && m.latency.count ? m.latency : null;
  const codes = Object.entries(m.codes).map(([c, n]) => c + ": " + n).join(", ");
  const errPct = m.finished ? 100 * m.errors / m.finished : 0;
  const errors = cell(fmtNum(m.errors), m.errors ? "err" : "zero");
  if (codes) errors.title = codes;
  return [
    cell(fmtNum(m.started), m.started ? "" : "zero"),
    cell(fmtRate(rateOf(m.started, before ? before.started : null, dt))),
    errors,
    cell(errPct ? errPct.toFixed(1) + " %" : "0 %", errPct ? "err" : "zero"),
    cell(fmtNum(m.in_flight), m.in_flight ? "" : "zero"),
    cell(fmtDur(lat && lat.p50)), cell(fmtDur(lat && lat.p90)), cell(fmtDur(lat && lat.p99)),
    cell(fmtDur(lat && lat.max)),
  ];
}

function renderServices(d, dt) {
  const cards = d.services.map(s => {
    const rows = s.methods.map(m => {
      const tr = el("tr", { class: "method" + (m.method === selected ? " selected" : ""),
                            "data-method": m.method,
                            onclick: () => { selected = m.method; render(); } },
                    cell(m.name, "name"), ...methodCells(m, previousMethod(m.method), dt));
      return tr;
    });
    return el("section", { class: "card service", "data-service": s.name },
      el("h2", { text: s.name }, el("small", { text: s.methods.length + (s.methods.length === 1 ? " method" : " methods") })),
      el("table", {}, el("thead", {}, el("tr", {}, el("th", { class: "first", text: "method" }),
                                          ...METHOD_HEAD.map(h => el("th", { text: h })))),
         el("tbody", {}, ...rows)));
  });
  if (!cards.length) cards.push(el("section", { class: "card" },
                                   el("div", { class: "empty", text: "No services registered." })));
  document.getElementById("services").replaceChildren(...cards);
}

function renderClients(d, dt) {
  const card = document.getElementById("clients-card");
  card.hidden = !d.clients.length;
  if (!d.clients.length) return;
  const key = c => c.method + "|" + c.endpoint;
  const old = new Map(prev ? prev.clients.map(c => [key(c), c]) : []);
  const rows = d.clients.map(c => el("tr", {}, cell(c.method, "name"),
                                     el("td", { class: "labels", text: c.endpoint }),
                                     ...methodCells(c, old.get(key(c)), dt)));
  document.getElementById("clients").replaceChildren(el("table", { class: "series" },
    el("thead", {}, el("tr", {}, el("th", { text: "method" }), el("th", { text: "endpoint" }),
                       ...METHOD_HEAD.map(h => el("th", { text: h })))),
    el("tbody", {}, ...rows)));
}

function seriesTable(list, empty, strip) {
  if (!list.length) return el("div", { class: "empty", text: empty });
  const rows = list.map(s => {
    const state = s.labels.state;
    const value = state !== undefined && s.type === "gauge"
      ? el("td", {}, el("span", { class: "badge " + state, text: state + (s.value === 1 ? "" : " = " + fmtNum(s.value)) }))
      : cell(s.type === "histogram" ? fmtNum(s.value) + " obs, p99 " + fmtDur(s.latency.p99)
                                    : fmtNum(s.value));
    const labels = Object.assign({}, s.labels); delete labels.state;
    return el("tr", {}, cell(s.name.replace(strip, ""), "name"),
              el("td", { class: "labels", text: labelText(labels) }), value);
  });
  return el("table", { class: "series" }, el("thead", {}, el("tr", {}, el("th", { text: "metric" }),
                                          el("th", { text: "labels" }), el("th", { text: "value" }))),
            el("tbody", {}, ...rows));
}

// The cluster's members (a "members" section, added by the membership layer).
function membersTable(list) {
  const rows = list.map(m => el("tr", {},
    el("td", { class: "name", text: m.node_id + (m.self ? " (this node)" : "") }),
    el("td", { text: m.address }),
    el("td", {}, el("span", { class: "badge " + m.state, text: m.state })),
    el("td", { class: "num", text: String(m.incarnation) }),
    el("td", { class: "labels", text: Object.entries(m.tags || {}).map(([k, v]) => k + "=" + v)
                                          .join(" ") }),
    el("td", { class: "num", text: fmtUptime(m.since_seconds) + " ago" })));
  return el("table", { class: "series", id: "members-table" },
    el("thead", {}, el("tr", {}, ...["node", "address", "state", "incarnation", "tags",
                                     "changed"].map(t => el("th", { text: t })))),
    el("tbody", {}, ...rows));
}

const RESILIENCE = /circuit|breaker|eject|outlier|hedge|retr(y|ies)|budget|failover/;
const MEMBERS = /member/;
function renderSeries(d) {
  const connections = [], resilience = [], members = [], other = [];
  for (const s of d.series) {
    if (/connection/.test(s.name)) connections.push(s);
    else if (RESILIENCE.test(s.name)) resilience.push(s);
    else if (MEMBERS.test(s.name)) members.push(s);
    else other.push(s);
  }
  const strip = /^meshrpc_/;
  document.getElementById("connections").replaceChildren(
    seriesTable(connections, "No connection metrics.", strip));
  document.getElementById("resilience").replaceChildren(seriesTable(resilience,
    "No circuit breakers or ejected endpoints reported.", strip));
  const table = Array.isArray(d.members) ? membersTable(d.members) : null;
  document.getElementById("members-card").hidden = !members.length && !table;
  document.getElementById("members").replaceChildren(
    ...(table ? [table] : []), seriesTable(members, "", strip));
  document.getElementById("other").replaceChildren(seriesTable(other, "Nothing else.", /^$/));
}

function niceMax(v) {
  if (!(v > 0)) return 1e-3;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function renderLineChart(points, now) {
  const chart = document.getElementById("latency-chart");
  const W = 640, H = 230, L = 62, R = 12, T = 10, B = 26;
  const kids = [];
  const ymax = niceMax(Math.max(0, ...points.map(p => Math.max(p.p50, p.p99))));
  // The window grows with the history, from 10 s up to HISTORY_MS, so a page just opened
  // is not squeezed into the right edge.
  const span = Math.min(HISTORY_MS, Math.max(10000, points.length ? now - points[0].t : 0));
  const x = t => L + (W - L - R) * (1 - (now - t) / span);
  const y = v => T + (H - T - B) * (1 - v / ymax);
  for (let i = 0; i <= 4; i++) {
    const v = ymax * i / 4;
    kids.push(svg("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: "#e3e7ee" }));
    kids.push(svg("text", { x: L - 8, y: y(v) + 4, "text-anchor": "end", text: fmtDur(v) }));
  }
  for (let i = 4; i >= 0; i--) {
    const ago = Math.round(span * i / 4000);
    kids.push(svg("text", { x: x(now - ago * 1000), y: H - 8,
                           "text-anchor": i === 4 ? "start" : i === 0 ? "end" : "middle",
                           text: ago ? "-" + ago + "s" : "now" }));
  }
  for (const [key, color] of [["p50", "var(--accent)"], ["p99", "var(--p99)"]]) {
    if (points.length > 1) {
      kids.push(svg("polyline", { fill: "none", stroke: color, "stroke-width": 2,
                                 "stroke-linejoin": "round", class: "series-" + key,
                                 points: points.map(p => x(p.t).toFixed(1) + "," + y(p[key]).toFixed(1)).join(" ") }));
    }
    for (const p of points) {
      kids.push(svg("circle", { cx: x(p.t), cy: y(p[key]), r: 3, fill: color, class: "point" }));
    }
  }
  if (!points.length) {
    kids.push(svg("text", { x: (W + L) / 2, y: H / 2, "text-anchor": "middle",
                           text: selected ? "no calls yet" : "no method selected" }));
  }
  chart.replaceChildren(...kids);
  chart.setAttribute("data-points", String(points.length));
}

function renderHistogram(buckets) {
  const chart = document.getElementById("latency-histogram");
  const W = 440, H = 230, L = 40, R = 8, T = 10, B = 26;
  const kids = [];
  // Counts: a maximum divisible by the 4 grid steps keeps the tick labels whole.
  const peak = Math.max(4, ...buckets.map(b => b[1]));
  const p10 = Math.pow(10, Math.floor(Math.log10(peak)));
  const ymax = [1, 2, 4, 8, 10].map(m => m * p10).find(v => v >= peak);
  const y = v => T + (H - T - B) * (1 - v / ymax);
  for (let i = 0; i <= 4; i++) {
    const v = ymax * i / 4;
    kids.push(svg("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: "#e3e7ee" }));
    kids.push(svg("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end", text: fmtNum(Math.round(v)) }));
  }
  const n = buckets.length, slot = (W - L - R) / Math.max(n, 1);
  buckets.forEach((b, i) => {
    const bar = svg("rect", { x: L + i * slot + slot * 0.12, width: Math.max(1, slot * 0.76),
                              y: y(b[1]), height: Math.max(1, y(0) - y(b[1])), rx: 2,
                              fill: "var(--accent)", class: "bar" });
    bar.append(svg("title", { text: "≤ " + fmtDur(b[0]) + ": " + b[1] + " calls" }));
    kids.push(bar);
    if (i === 0 || i === n - 1 || (n > 4 && i === Math.floor(n / 2))) {
      const anchor = i === 0 ? "start" : i === n - 1 ? "end" : "middle";
      const at = i === 0 ? L + i * slot : i === n - 1 ? L + (i + 1) * slot : L + (i + 0.5) * slot;
      kids.push(svg("text", { x: at, y: H - 8, "text-anchor": anchor,
                             text: "≤" + fmtDur(b[0]) }));
    }
  });
  if (!n) kids.push(svg("text", { x: (W + L) / 2, y: H / 2, "text-anchor": "middle", text: "no calls yet" }));
  chart.replaceChildren(...kids);
  chart.setAttribute("data-bars", String(n));
}

function renderCharts(d) {
  const methods = allMethods(d);
  if (!selected || !methods.some(m => m.method === selected)) {
    const busiest = methods.slice().sort((a, b) => b.started - a.started)[0];
    selected = busiest ? busiest.method : null;
  }
  const m = methods.find(m => m.method === selected);
  document.getElementById("chart-method").textContent = selected || "select a method below";
  renderLineChart(history[selected] || [], Date.now());
  renderHistogram(m && m.latency ? m.latency.buckets : []);
}

function render() {
  if (!current) return;
  const dt = prev ? current.process.uptime_seconds - prev.process.uptime_seconds : null;
  renderHeader(current);
  renderTiles(current, dt);
  renderCharts(current);
  renderServices(current, dt);
  renderClients(current, dt);
  renderSeries(current);
}

function setLive(ok, why) {
  document.getElementById("live-dot").className = "dot " + (ok ? "on" : "off");
  document.getElementById("live-text").textContent =
    ok ? "live · updated " + new Date().toLocaleTimeString() : "disconnected: " + why;
}

async function poll() {
  try {
    const response = await fetch("status.json", { cache: "no-store" });
    if (!response.ok) throw new Error("HTTP " + response.status);
    const d = await response.json();
    prev = current;
    current = d;
    recordHistory(d, Date.now());
    render();
    document.body.setAttribute("data-samples", String(++samples));
    setLive(true);
  } catch (e) {
    setLive(false, e.message || String(e));
  } finally {
    setTimeout(poll, POLL_MS);
  }
}
poll();
</script>
</body>
</html>
)html";

}  // namespace

std::string_view status_html() { return kStatusHtml; }

}  // namespace meshrpc::observe
