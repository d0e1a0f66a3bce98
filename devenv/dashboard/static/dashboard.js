// The page: draws the stack's dashboard from /api/data and refreshes it every 10 s.
"use strict";
const REFRESH_MS = 10000;
const ROW_PX = 48, GAP_PX = 8;
const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"];
const charts = {};  // widget key -> {plot, shape}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  Object.entries(attrs || {}).forEach(([k, v]) => (k === "class" ? (node.className = v) : node.setAttribute(k, v)));
  children.forEach((c) => node.append(c instanceof Node ? c : document.createTextNode(c ?? "")));
  return node;
}
const when = (epoch) => new Date(epoch * 1000).toLocaleTimeString();
const age = (s) => (s == null ? "" : s < 120 ? `${Math.round(s)} s` : s < 7200 ? `${Math.round(s / 60)} min` : `${(s / 3600).toFixed(1)} h`);

function query() {
  const range = document.querySelector("input[name=range]:checked").value;
  if (range !== "custom") return `range=${range}`;
  const from = Date.parse(document.getElementById("from").value) / 1000;
  const toText = document.getElementById("to").value;
  return `start=${from}&end=${toText ? Date.parse(toText) / 1000 : Date.now() / 1000}`;
}

// A link with ?start=&end= (epoch seconds; a run's report) opens the page at that window, as custom.
const localInput = (epoch) => new Date(epoch * 1000 - new Date(epoch * 1000).getTimezoneOffset() * 60000).toISOString().slice(0, 19);
function windowFromUrl() {
  const params = new URLSearchParams(window.location.search);
  const start = Number(params.get("start")), end = Number(params.get("end"));
  if (!params.has("start") || !(start > 0)) return;
  document.querySelector("input[name=range][value=custom]").checked = true;
  document.getElementById("from").value = localInput(start);
  if (params.has("end") && end > start) document.getElementById("to").value = localInput(end);
}

// One x axis (the union of the visible series' timestamps), one y array per visible series.
function aligned(widget) {
  const shown = widget.series.filter((s) => s.visible);
  const xs = [...new Set(shown.flatMap((s) => (widget.points[s.id] || []).map((p) => p[0])))].sort((a, b) => a - b);
  const ys = shown.map((s) => {
    const byX = new Map((widget.points[s.id] || []).map((p) => [p[0], p[1]]));
    return xs.map((x) => (byX.has(x) ? byX.get(x) : null));
  });
  return { shown, data: [xs, ...ys] };
}

function axisOptions(widget, side) {
  const axis = ((widget.properties.yAxis || {})[side]) || {};
  const range = (u, min, max) => {
    const low = axis.min ?? Math.min(0, min ?? 0);
    return [low, axis.max ?? (max > low ? max : low + 1)];  // a flat or empty series still gets an axis
  };
  return { range, label: axis.label };
}

function chart(widget, box) {
  const { shown, data } = aligned(widget);
  const hasRight = shown.some((s) => s.axis === "right");
  const left = axisOptions(widget, "left"), right = axisOptions(widget, "right");
  const opts = {
    width: Math.max(box.clientWidth - 12, 100),
    height: widget.height * ROW_PX + (widget.height - 1) * GAP_PX - 100,  // room for the title and the legend
    scales: { x: { time: true }, y: { range: left.range }, y2: { range: right.range } },
    series: [{}, ...shown.map((s, i) => ({
      label: s.label, scale: s.axis === "right" ? "y2" : "y",
      stroke: s.color || PALETTE[i % PALETTE.length], width: 1.5, spanGaps: false, points: { size: 4 },
    }))],
    axes: [{}, { scale: "y", label: left.label }, ...(hasRight ? [{ scale: "y2", side: 1, label: right.label, grid: { show: false } }] : [])],
  };
  return { plot: new uPlot(opts, data, box), shape: shown.map((s) => s.id).join(",") };
}

function drawWidgets(dashboard) {
  const root = document.getElementById("widgets");
  dashboard.widgets.forEach((widget, index) => {
    const key = `w${index}`;
    let box = document.getElementById(key);
    if (!box) {
      box = el("div", { class: "widget", id: key });
      box.style.gridColumn = `${widget.x + 1} / span ${widget.width}`;
      box.style.gridRow = `${widget.y + 1} / span ${widget.height}`;
      box.append(el("h3", {}, widget.title), el("div", { class: "body" }));
      root.append(box);
    }
    const body = box.querySelector(".body");
    if (widget.kind !== "metric") {
      body.replaceChildren(widget.kind === "text"
        ? el("pre", {}, widget.properties.markdown || "")
        : el("p", { class: "note" }, `a ${widget.kind} widget: not rendered here`));
      return;
    }
    if (widget.error) {
      body.replaceChildren(el("p", { class: "error" }, widget.error));
      delete charts[key];
      return;
    }
    const existing = charts[key];
    const { shown, data } = aligned(widget);
    if (existing && existing.shape === shown.map((s) => s.id).join(",") && body.contains(existing.plot.root)) {
      existing.plot.setData(data);
    } else {
      if (existing) existing.plot.destroy();
      body.replaceChildren();
      charts[key] = chart(widget, body);
    }
  });
}

function table(headers, rows) {
  return el("table", {}, el("tr", {}, ...headers.map((h) => el("th", {}, h))),
    ...rows.map((r) => el("tr", {}, ...r.map((c) => (c instanceof Node ? el("td", {}, c) : el("td", {}, String(c ?? "")))))));
}

// The log tail of the task last clicked, refreshed with the page until closed.
let shownLog = null;  // {cluster, service, task}
async function drawLog() {
  const box = document.getElementById("log");
  if (!shownLog) { box.replaceChildren(); return; }
  const { cluster, service, task } = shownLog;
  const close = el("button", { type: "button", class: "close" }, "close");
  close.addEventListener("click", () => { shownLog = null; drawLog(); });
  const params = new URLSearchParams({ cluster, service, task });
  let body;
  try {
    const response = await fetch(`/api/logs?${params}`);
    const doc = await response.json();
    if (!response.ok) throw new Error(doc.error || response.statusText);
    body = [el("p", { class: "note" }, `from ${doc.source}`), el("pre", {}, doc.lines.join("\n") || "(empty)")];
  } catch (err) {
    body = [el("p", { class: "error" }, `log not read: ${err.message}`)];
  }
  if (!shownLog || shownLog.task !== task) return;  // another task was clicked meanwhile
  box.replaceChildren(el("h3", {}, `log of ${service} task ${task.slice(0, 12)}`, close), ...body);
  const pre = box.querySelector("pre");
  if (pre) pre.scrollTop = pre.scrollHeight;
}

function logLink(cluster, service, task) {
  const link = el("a", { href: "#log", class: "task-log", title: "show this task's log" }, task.id.slice(0, 12));
  link.addEventListener("click", () => { shownLog = { cluster, service, task: task.id }; drawLog(); });
  return link;
}

function drawServices(services) {
  document.getElementById("services").replaceChildren(...(services || []).map((s) => el("details", { open: "" },
    el("summary", {}, `${s.name}: ${s.running} running / ${s.desired} desired${s.pending ? `, ${s.pending} pending` : ""}`),
    table(["task (click: log)", "status", "health", "age"], s.tasks.map((t) => [logLink(s.cluster, s.name, t), `${t.last_status} → ${t.desired_status}`, t.health, age(t.age_s)])),
    s.targets.length ? table(["ALB target", "state", "reason"], s.targets.map((t) => [t.id, el("span", { class: `state-${t.state === "healthy" ? "OK" : "ALARM"}` }, t.state), t.reason])) : "",
    table(["event", ""], s.events.map((e) => [when(e.at), e.message])))));
}

function drawAlarms(alarms) {
  document.getElementById("alarms").replaceChildren(...(alarms || []).map((a) => el("details", {},
    el("summary", {}, el("span", { class: `state-${a.state}` }, a.state), ` ${a.name}`),
    el("p", {}, `since ${when(a.since)}: ${a.reason}`),
    table(["changed", "summary"], a.history.map((h) => [when(h.at), h.summary])))));
}

function render(doc) {
  document.getElementById("title").textContent = `${doc.dashboard ? doc.dashboard.name : "dashboard"} (${doc.target})`;
  document.getElementById("errors").replaceChildren(...doc.errors.map((e) => el("div", {}, e)));
  if (doc.dashboard) drawWidgets(doc.dashboard);
  drawServices(doc.services);
  drawAlarms(doc.alarms);
  document.getElementById("activities").replaceChildren(table(["started", "description", "status"],
    (doc.scaling_activities || []).map((a) => [when(a.at), a.description, a.status])));
  document.getElementById("outputs").replaceChildren(table(["output", "value"], (doc.outputs || []).map((o) => [o.key, o.value])));
  document.getElementById("refreshed").textContent = `refreshed ${new Date().toLocaleTimeString()}`;
  document.body.dataset.loaded = "true";
}

async function refresh() {
  try {
    const asked = query();
    const response = await fetch(`/api/data?${asked}`);
    const doc = await response.json();
    if (!response.ok) throw new Error(doc.error || response.statusText);
    render(doc);
    document.body.dataset.query = asked;  // the window shown, for a reader of the page's DOM
    if (shownLog) drawLog();
  } catch (err) {
    document.getElementById("errors").replaceChildren(el("div", {}, `refresh failed: ${err.message}`));
  }
}

windowFromUrl();
document.getElementById("range").addEventListener("change", refresh);
window.addEventListener("resize", () => Object.values(charts).forEach((c) => c.plot.setSize({ width: Math.max(c.plot.root.parentNode.clientWidth - 12, 100), height: c.plot.height })));
refresh();
setInterval(refresh, REFRESH_MS);
