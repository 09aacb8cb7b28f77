--[[
arbor.dashboard.page: the dashboard's single page (HTML, CSS and
JavaScript in one string, compiled into the binary like every module
under lua/, so it works offline and loads nothing from elsewhere).

The page takes the token from its URL's fragment (#token=..., which the
browser never sends to the server), keeps it in sessionStorage and takes
it out of the address bar; without one it asks for it.  It opens one
event stream (/api/events) and renders what arrives: "hello" (all of
it), then "tree", "history", "procs" and "log" as they change.  Actions
are POSTs with the token in the X-Arbor-Token header.  Uptimes tick in
the page between updates; nothing polls.

Rows carry data-path, data-status and data-restarts so tests (and
scripts) can read the rendered page.  Depends on nothing.
]]
local M = {}

M.html = [==[<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>arbor dashboard</title>
<style>
:root { --bg:#f5f6f8; --card:#fff; --ink:#1d2330; --dim:#6b7385; --line:#e3e6ec;
  --ok:#1f9d55; --warn:#c77c02; --bad:#d64545; --accent:#3b5bdb; }
* { box-sizing:border-box; }
body { margin:0; font:14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif;
  background:var(--bg); color:var(--ink); }
header { display:flex; align-items:center; gap:16px; padding:10px 20px;
  background:#1d2330; color:#fff; flex-wrap:wrap; }
header h1 { font-size:17px; margin:0; font-weight:600; letter-spacing:.3px; }
header .meta { color:#b8bfcc; font-size:13px; flex:1; }
header .meta b { color:#fff; font-weight:500; }
#conn { font-size:12px; padding:2px 8px; border-radius:10px; background:#444c5e; }
#conn.live { background:var(--ok); } #conn.down { background:var(--bad); }
button { font:inherit; font-size:12px; border:1px solid var(--line); background:#fff;
  border-radius:5px; padding:2px 8px; cursor:pointer; color:var(--ink); }
button:hover { border-color:var(--accent); color:var(--accent); }
button.danger:hover { border-color:var(--bad); color:var(--bad); }
header button { background:#2c3446; color:#fff; border-color:#444c5e; }
main { display:grid; grid-template-columns: minmax(0,3fr) minmax(0,2fr); gap:16px;
  padding:16px 20px; }
section { background:var(--card); border:1px solid var(--line); border-radius:8px;
  padding:12px 14px; min-width:0; }
section h2 { font-size:13px; text-transform:uppercase; letter-spacing:.6px;
  color:var(--dim); margin:0 0 8px; font-weight:600; }
.col { display:flex; flex-direction:column; gap:16px; min-width:0; }
table { border-collapse:collapse; width:100%; }
th { text-align:left; font-weight:500; color:var(--dim); font-size:12px;
  border-bottom:1px solid var(--line); padding:4px 6px; white-space:nowrap; }
td { padding:3px 6px; border-bottom:1px solid #f0f1f4; white-space:nowrap;
  font-variant-numeric: tabular-nums; }
td.reason { white-space:normal; color:var(--dim); max-width:260px;
  overflow-wrap:anywhere; font-size:12px; }
tr.sup > td.id { font-weight:600; }
.badge { display:inline-block; font-size:11px; padding:0 7px; border-radius:9px;
  color:#fff; background:var(--dim); }
.badge.running { background:var(--ok); } .badge.restarting { background:var(--warn); }
.badge.stopped { background:var(--bad); }
.mono { font-family: ui-monospace, "SFMono-Regular", Menlo, monospace; font-size:12px; }
.restarts.hot { color:var(--bad); font-weight:600; }
.charts { display:grid; grid-template-columns: repeat(auto-fill, minmax(190px,1fr)); gap:10px; }
.chart { border:1px solid var(--line); border-radius:6px; padding:6px 8px; }
.chart .name { font-size:12px; font-weight:600; overflow:hidden; text-overflow:ellipsis; }
.chart .nums { font-size:11px; color:var(--dim); }
.legend i { display:inline-block; width:10px; height:3px; vertical-align:middle; margin:0 3px 0 8px; }
#log { max-height:260px; overflow:auto; background:#10141c; color:#d8dde8;
  border-radius:6px; padding:6px 8px; }
#log div { white-space:pre-wrap; overflow-wrap:anywhere; font-size:12px; padding:1px 0; }
#log .error { color:#ff8b8b; } #log .warning { color:#ffd479; } #log .debug { color:#8a93a6; }
#log .t { color:#7d8799; }
#panel { position:fixed; inset:0; background:rgba(20,24,34,.45); display:none;
  align-items:center; justify-content:center; }
#panel .box { background:#fff; border-radius:8px; padding:16px; width:min(640px,92vw); }
#panel pre { background:#f3f4f7; padding:8px; border-radius:6px; white-space:pre-wrap;
  max-height:300px; overflow:auto; }
#token-form { padding:40px; text-align:center; display:none; }
#token-form input { font:inherit; padding:4px 8px; width:340px; }
#toast { position:fixed; bottom:14px; right:14px; background:#1d2330; color:#fff;
  padding:8px 12px; border-radius:6px; display:none; max-width:60vw; }
.empty { color:var(--dim); font-style:italic; }
@media (max-width: 900px) { main { grid-template-columns: 1fr; } }
</style>
</head>
<body>
<header>
  <h1>arbor</h1>
  <div class="meta" id="host">connecting&hellip;</div>
  <span id="conn">connecting</span>
  <button id="reload-btn" title="reload the script: a dry run first">Reload&hellip;</button>
  <button id="stop-btn" class="danger" title="shut the host down in order">Stop host</button>
</header>
<div id="token-form">
  <p>This dashboard needs the token the host printed at start.</p>
  <input id="token-input" placeholder="token" autocomplete="off"> <button id="token-ok">Open</button>
</div>
<main id="main">
  <div class="col">
  <section id="tree-card"><h2>Supervision tree</h2><div id="tree" class="empty">waiting for the host&hellip;</div></section>
  <section><h2>Log</h2><div id="log" class="mono"></div></section>
  </div>
  <div class="col">
  <section><h2>Restarts and crashes <span class="legend"><i style="background:#dbe4ff;border:1px solid #3b5bdb"></i>restarts<i style="background:#d64545"></i>crashes</span></h2><div id="charts" class="charts"></div></section>
  <section><h2>Busiest processes</h2><div id="procs"></div></section>
  </div>
</main>
<div id="panel"><div class="box"><h3 id="panel-title">Reload</h3><pre id="panel-text"></pre>
  <button id="panel-apply">Apply</button> <button id="panel-cancel">Cancel</button></div></div>
<div id="toast"></div>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s == null ? "" : s).replace(/[&<>"']/g,
  (c) => ({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;","'":"&#39;"}[c]));
let token = null;
const view = { tree: null, treeAt: 0, history: null, procs: null, log: [] };

function takeToken() {
  const m = location.hash.match(/token=([^&]+)/);
  if (m) {
    token = decodeURIComponent(m[1]);
    try { sessionStorage.setItem("arbor-token", token); } catch (e) {}
    history.replaceState(null, "", location.pathname);
  } else {
    try { token = sessionStorage.getItem("arbor-token"); } catch (e) {}
  }
}

function fmtMs(ms) {
  if (ms == null) return "";
  if (ms < 1000) return ms + " ms";
  const s = ms / 1000;
  if (s < 60) return s.toFixed(0) + " s";
  if (s < 3600) return Math.floor(s / 60) + " min " + Math.floor(s % 60) + " s";
  if (s < 86400) return Math.floor(s / 3600) + " h " + Math.floor(s % 3600 / 60) + " min";
  return Math.floor(s / 86400) + " d " + Math.floor(s % 86400 / 3600) + " h";
}
function fmtBytes(n) {
  if (n == null) return "";
  if (n < 1024) return n + " B";
  if (n < 1048576) return (n / 1024).toFixed(1) + " KiB";
  return (n / 1048576).toFixed(1) + " MiB";
}

function toast(text, bad) {
  const t = $("toast");
  t.textContent = text;
  t.style.background = bad ? "#d64545" : "#1d2330";
  t.style.display = "block";
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.style.display = "none"; }, 4000);
}

async function post(path, body) {
  const r = await fetch(path, { method: "POST", headers: {
    "Content-Type": "application/json", "X-Arbor-Token": token },
    body: JSON.stringify(body || {}) });
  let data = {};
  try { data = await r.json(); } catch (e) {}
  if (!r.ok && !("text" in data)) throw new Error(data.error || ("HTTP " + r.status));
  return data;
}

// {=== the tree
function rows(node, path, depth, out) {
  for (const c of node.children || []) {
    const p = path.concat([c.id]);
    const isSup = c.kind === "supervisor";
    const up = c.uptime_ms != null ? c.uptime_ms + (Date.now() - view.treeAt) : null;
    out.push('<tr class="child' + (isSup ? " sup" : "") + '" data-path="' + esc(p.join("/")) +
      '" data-status="' + esc(c.status) + '" data-restarts="' + esc(c.restarts) + '">' +
      '<td class="id" style="padding-left:' + (6 + depth * 18) + 'px">' + (isSup ? "&#9662; " : "") + esc(c.id) + "</td>" +
      '<td><span class="badge ' + esc(c.status) + '">' + esc(c.status) + "</span></td>" +
      '<td class="mono">' + esc(c.pid || "-") + "</td>" +
      '<td class="mono">' + esc(c.os_pid || "") + "</td>" +
      '<td class="up" data-up="' + (up == null ? "" : up) + '">' + esc(up == null ? "" : fmtMs(up)) + "</td>" +
      '<td class="restarts' + (c.restarts > 0 ? " hot" : "") + '">' + esc(c.restarts) + "</td>" +
      '<td class="reason">' + esc(c.start_failure || c.last_exit || "") + (c.status_text ? " <i>" + esc(c.status_text) + "</i>" : "") + "</td>" +
      '<td><button data-act="restart" data-path="' + esc(JSON.stringify(p)) + '">restart</button> ' +
      '<button class="danger" data-act="stop" data-path="' + esc(JSON.stringify(p)) + '">stop</button></td></tr>');
    if (c.children) rows(c, p, depth + 1, out);
    if (c.error) out.push('<tr><td colspan="8" class="empty" style="padding-left:' + (24 + depth * 18) + 'px">' + esc(c.error) + "</td></tr>");
  }
}
function renderTree() {
  const t = view.tree;
  if (!t) return;
  const out = ['<table><thead><tr><th>child</th><th>status</th><th>pid</th><th>OS pid</th><th>uptime</th><th>restarts</th><th>last exit</th><th></th></tr></thead><tbody>'];
  out.push('<tr class="sup root" data-path=""><td class="id"><b>' + esc(t.name || "root") + "</b> <span class=\"mono\">" + esc(t.pid || "") + "</span></td><td colspan=\"7\" class=\"reason\">" + esc(t.strategy || "") + (t.error ? " " + esc(t.error) : "") + "</td></tr>");
  rows(t, [], 1, out);
  out.push("</tbody></table>");
  const el = $("tree");
  el.className = "";
  el.innerHTML = out.join("");
}
function tickUptimes() {
  const dt = Date.now() - view.treeAt;
  for (const td of document.querySelectorAll("td.up")) {
    const base = td.getAttribute("data-up");
    if (base !== "") td.textContent = fmtMs(Number(base) + (Date.now() - view.renderedAt));
  }
}
// }===

// {=== charts: one small SVG per supervisor
function chart(s) {
  const pts = s.points || [];
  const W = 180, H = 44;
  if (pts.length === 0) return "";
  const t0 = pts[0][0], t1 = Math.max(pts[pts.length - 1][0], t0 + 1);
  const lo = (i) => Math.min(...pts.map((p) => p[i]));
  const hi = Math.max(1, ...pts.map((p) => Math.max(p[1] - lo(1), p[2] - lo(2))));
  const x = (p) => ((p[0] - t0) / (t1 - t0) * (W - 2) + 1).toFixed(1);
  const y = (p, i) => (H - 2 - (p[i] - lo(i)) / hi * (H - 6)).toFixed(1);
  const line = (i) => pts.map((p) => x(p) + "," + y(p, i)).join(" ");
  const area = x(pts[0]) + "," + (H - 1) + " " + line(1) + " " + x(pts[pts.length - 1]) + "," + (H - 1);
  return '<div class="chart" data-supervisor="' + esc(s.supervisor) + '"><div class="name" title="' + esc(s.supervisor) + '">' + esc(s.supervisor) + "</div>" +
    '<svg width="' + W + '" height="' + H + '" viewBox="0 0 ' + W + " " + H + '">' +
    '<line x1="0" y1="' + (H - 1) + '" x2="' + W + '" y2="' + (H - 1) + '" stroke="#e3e6ec"/>' +
    '<polygon fill="#dbe4ff" stroke="#3b5bdb" stroke-width="1.5" points="' + area + '"/>' +
    '<polyline fill="none" stroke="#d64545" stroke-width="1.5" points="' + line(2) + '"/></svg>' +
    '<div class="nums">restarts ' + esc(s.restarts) + " &middot; crashes " + esc(s.crashes) + "</div></div>";
}
function renderCharts() {
  const h = view.history;
  if (!h) return;
  $("charts").innerHTML = (h.series || []).map(chart).join("") || '<span class="empty">no supervisors</span>';
}
// }===

function renderProcs() {
  const p = view.procs;
  if (!p) return;
  const table = (title, list, field, fmt) => '<table><thead><tr><th>' + title + '</th><th>pid</th><th>name</th><th>state</th></tr></thead><tbody>' +
    (list || []).map((x) => '<tr><td>' + esc(fmt(x[field])) + '</td><td class="mono">' + esc(x.pid) + "</td><td>" + esc(x.name || x.current || x.kind) + "</td><td>" + esc(x.waiting || x.state) + "</td></tr>").join("") + "</tbody></table>";
  $("procs").innerHTML = table("mailbox", p.by_messages, "messages", (n) => n) + "<br>" + table("memory", p.by_memory, "memory", fmtBytes);
  const h = p.host || {};
  $("host").innerHTML = "<b>" + esc(h.script || "") + "</b> &middot; up " + esc(fmtMs(h.uptime_ms)) + " &middot; " + esc(h.processes) + " processes &middot; Lua heap " + esc(fmtBytes(h.memory && h.memory.lua)) + (h.os_pid ? " &middot; OS pid " + esc(h.os_pid) : "");
}

function addLog(events) {
  const el = $("log");
  const stick = el.scrollTop + el.clientHeight >= el.scrollHeight - 4;
  for (const e of events) {
    view.log.push(e);
    const d = document.createElement("div");
    d.className = e.level;
    const time = new Date(e.time).toISOString().slice(11, 23);
    d.innerHTML = '<span class="t">' + esc(time) + "</span> " + esc(e.level) + " " + esc(e.pid || "-") + " " + esc(e.text);
    el.appendChild(d);
  }
  while (el.childNodes.length > 200) el.removeChild(el.firstChild);
  if (stick) el.scrollTop = el.scrollHeight;
}

function onTree(d) { view.tree = d.tree; view.treeAt = Date.now(); view.renderedAt = Date.now(); renderTree(); }

function connect() {
  const es = new EventSource("/api/events?token=" + encodeURIComponent(token));
  const conn = $("conn");
  es.onopen = () => { conn.textContent = "live"; conn.className = "live"; };
  es.onerror = () => { conn.textContent = "reconnecting"; conn.className = "down"; };
  es.addEventListener("hello", (e) => {
    const d = JSON.parse(e.data);
    onTree(d.tree); view.history = d.history; view.procs = d.procs;
    renderCharts(); renderProcs();
    $("log").innerHTML = ""; view.log = []; addLog(d.log.events || []);
  });
  es.addEventListener("tree", (e) => onTree(JSON.parse(e.data)));
  es.addEventListener("history", (e) => { view.history = JSON.parse(e.data); renderCharts(); });
  es.addEventListener("procs", (e) => { view.procs = JSON.parse(e.data); renderProcs(); });
  es.addEventListener("log", (e) => addLog(JSON.parse(e.data).events || []));
}

document.addEventListener("click", async (ev) => {
  const b = ev.target.closest("button[data-act]");
  if (!b) return;
  const path = JSON.parse(b.getAttribute("data-path"));
  const act = b.getAttribute("data-act");
  if (act === "stop" && !confirm("Stop " + path.join("/") + "?")) return;
  try {
    await post("/api/children/" + act, { path: path });
    toast(act + " " + path.join("/") + ": done");
  } catch (e) { toast(act + " " + path.join("/") + ": " + e.message, true); }
});

$("reload-btn").onclick = async () => {
  try {
    const d = await post("/api/reload", { dry_run: true });
    $("panel-title").textContent = d.ok ? "Reload: what would change" : "Reload: the script does not load";
    $("panel-text").textContent = d.text;
    $("panel-apply").disabled = !d.ok;
    $("panel").style.display = "flex";
  } catch (e) { toast("reload: " + e.message, true); }
};
$("panel-cancel").onclick = () => { $("panel").style.display = "none"; };
$("panel-apply").onclick = async () => {
  $("panel").style.display = "none";
  try { const d = await post("/api/reload", { dry_run: false }); toast(d.text, !d.ok); }
  catch (e) { toast("reload: " + e.message, true); }
};
$("stop-btn").onclick = async () => {
  if (!confirm("Shut the host down?")) return;
  try { await post("/api/stop", {}); toast("the host is stopping"); }
  catch (e) { toast("stop: " + e.message, true); }
};
$("token-ok").onclick = () => {
  location.hash = "token=" + encodeURIComponent($("token-input").value.trim());
  location.reload();
};

takeToken();
if (!token) {
  $("main").style.display = "none";
  $("token-form").style.display = "block";
} else {
  connect();
  setInterval(tickUptimes, 1000);
}
</script>
</body>
</html>
]==]

return M
