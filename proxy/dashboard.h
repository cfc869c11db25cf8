// The live dashboard served at GET / by the admin listener: one self-contained page (no CDN, no
// build step) that polls /stats every second and draws counters, rates, charts and tables. With
// an [admin] token the page (served with 401 until then) asks for it and sends it as
// `Authorization: Bearer` on its fetches; it never puts it in a URL.
#pragma once

#include <string_view>

namespace wsb::proxy {

inline constexpr std::string_view kDashboardHtml = R"html(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>wsbridge</title>
<style>
  :root { --fg:#1b1f24; --muted:#5c6670; --line:#dde1e6; --bg:#f5f6f8; --card:#fff;
          --in:#1f6feb; --out:#d9480f; --ok:#2b8a3e; --bad:#c92a2a; --warn:#e67700; }
  * { box-sizing: border-box; }
  body { margin:0; background:var(--bg); color:var(--fg);
         font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif; }
  header { display:flex; align-items:center; gap:14px; padding:14px 24px; background:var(--card);
           border-bottom:1px solid var(--line); }
  h1 { font-size:18px; margin:0; letter-spacing:.2px; }
  h2 { font-size:13px; text-transform:uppercase; letter-spacing:.6px; color:var(--muted);
       margin:0 0 10px; font-weight:600; }
  .pill { padding:2px 10px; border-radius:999px; font-size:12px; font-weight:600; color:#fff;
          background:var(--muted); }
  .pill.ok { background:var(--ok); } .pill.bad { background:var(--bad); }
  #updated { margin-left:auto; color:var(--muted); font-size:12px; }
  #login { display:flex; gap:8px; align-items:center; }
  #login[hidden] { display:none; }
  #login input { font:inherit; padding:3px 8px; border:1px solid var(--line); border-radius:6px; }
  main { padding:20px 24px; display:grid; gap:16px; grid-template-columns:repeat(12,1fr); }
  .card { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:14px 16px; }
  .kpi { grid-column:span 2; }
  .kpi .v { font-size:28px; font-weight:650; font-variant-numeric:tabular-nums; }
  .kpi .l { color:var(--muted); font-size:12px; }
  .wide { grid-column:span 6; } .full { grid-column:span 12; } .third { grid-column:span 4; }
  canvas { width:100%; height:160px; display:block; }
  table { width:100%; border-collapse:collapse; font-variant-numeric:tabular-nums; }
  th, td { text-align:left; padding:6px 8px; border-bottom:1px solid var(--line); white-space:nowrap; }
  th { color:var(--muted); font-weight:600; font-size:12px; }
  td.n, th.n { text-align:right; }
  .dot { display:inline-block; width:9px; height:9px; border-radius:50%; margin-right:6px;
         background:var(--muted); }
  .dot.up { background:var(--ok); } .dot.down { background:var(--bad); }
  .legend span { display:inline-block; margin-right:14px; font-size:12px; color:var(--muted); }
  .legend i { display:inline-block; width:10px; height:3px; margin-right:5px; vertical-align:middle; }
  .empty { color:var(--muted); font-style:italic; }
  @media (max-width:1100px) { .kpi { grid-column:span 4; } .wide, .third { grid-column:span 12; } }
</style>
</head>
<body>
<header>
  <h1>wsbridge</h1><span id="state" class="pill">connecting…</span>
  <form id="login" hidden><label for="token">admin token</label>
    <input id="token" type="password" autocomplete="current-password" required>
    <button type="submit">show</button></form>
  <span id="updated">waiting for /stats</span>
</header>
<main>
  <div class="card kpi"><div class="v" id="active-total">–</div><div class="l">active connections</div></div>
  <div class="card kpi"><div class="v" id="accepted-total">–</div><div class="l">connections accepted</div></div>
  <div class="card kpi"><div class="v" id="msgs-in-rate">–</div><div class="l">messages/s in (to upstream)</div></div>
  <div class="card kpi"><div class="v" id="msgs-out-rate">–</div><div class="l">messages/s out (to client)</div></div>
  <div class="card kpi"><div class="v" id="bytes-rate">–</div><div class="l">bytes/s both ways</div></div>
  <div class="card kpi"><div class="v" id="refused-total">–</div><div class="l">handshakes refused</div></div>

  <div class="card wide"><h2>Messages per second</h2>
    <div class="legend"><span><i style="background:var(--in)"></i>in</span><span><i style="background:var(--out)"></i>out (dashed)</span></div>
    <canvas id="chart-msgs"></canvas></div>
  <div class="card wide"><h2>Active connections</h2>
    <div class="legend"><span><i style="background:var(--fg)"></i>active</span></div>
    <canvas id="chart-active"></canvas></div>

  <div class="card full"><h2>Routes</h2><table id="routes"><thead><tr>
    <th>route</th><th class="n">active</th><th class="n">accepted</th><th class="n">msg/s in</th>
    <th class="n">msg/s out</th><th class="n">messages in</th><th class="n">messages out</th><th>closed by code</th>
  </tr></thead><tbody></tbody></table></div>

  <div class="card third"><h2>Refusals by status</h2><table id="refusals"><thead><tr>
    <th>status</th><th class="n">count</th></tr></thead><tbody></tbody></table></div>
  <div class="card third"><h2>Upstreams</h2><table id="upstreams"><thead><tr>
    <th>endpoint</th><th class="n">connect avg</th><th class="n">failures</th></tr></thead><tbody></tbody></table></div>
  <div class="card third"><h2>Top Socket.IO events</h2><table id="events"><thead><tr>
    <th>route</th><th>event</th><th class="n">count</th><th class="n">/s</th></tr></thead><tbody></tbody></table></div>
  <div class="card wide"><h2>Filter actions</h2><table id="filters"><thead><tr>
    <th>filter</th><th>action</th><th class="n">count</th></tr></thead><tbody></tbody></table></div>
  <div class="card wide"><h2>Relay latency</h2><table id="latency"><tbody></tbody></table></div>
</main>
<script>
"use strict";
const HISTORY = 60;
const REASONS = {400:"bad request",401:"unauthorized",403:"forbidden",404:"no route",408:"timeout",
  413:"too large",429:"rate limited",431:"headers too large",502:"no upstream",503:"unavailable"};
const series = {in: [], out: [], active: []};
let previous = null;

const $ = (id) => document.getElementById(id);
const fmt = (n) => n >= 1e9 ? (n / 1e9).toFixed(1) + "G" : n >= 1e6 ? (n / 1e6).toFixed(1) + "M"
  : n >= 1e4 ? (n / 1e3).toFixed(1) + "k" : String(Math.round(n));
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;"}[c]));
const sum = (o) => Object.values(o || {}).reduce((a, b) => a + b, 0);

function rate(now, before, seconds) { return before === undefined ? 0 : Math.max(0, (now - before) / seconds); }

function rows(id, list, empty) {
  $(id).querySelector("tbody").innerHTML = list.length ? list.join("")
    : `<tr><td class="empty" colspan="8">${empty}</td></tr>`;
}

function draw(canvas, lines) {
  const dpr = window.devicePixelRatio || 1, w = canvas.clientWidth, h = canvas.clientHeight;
  canvas.width = w * dpr; canvas.height = h * dpr;
  const g = canvas.getContext("2d");
  g.scale(dpr, dpr);
  const max = Math.max(1, ...lines.flatMap((l) => l.data));
  const step = Math.pow(10, Math.floor(Math.log10(max)));
  const top = Math.ceil(max / step) * step;  // a round axis maximum
  const left = 44, bottom = h - 18;
  g.font = "11px system-ui, sans-serif"; g.fillStyle = "#5c6670"; g.strokeStyle = "#dde1e6"; g.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const y = bottom - (bottom - 6) * i / 4;
    g.beginPath(); g.moveTo(left, y + .5); g.lineTo(w, y + .5); g.stroke();
    g.fillText(fmt(top * i / 4), 4, y + 4);
  }
  g.fillText(`${HISTORY}s ago`, left, h - 4); g.fillText("now", w - 24, h - 4);
  for (const l of lines) {
    g.strokeStyle = l.color; g.lineWidth = 2; g.setLineDash(l.dash || []); g.beginPath();
    l.data.forEach((v, i) => {
      const x = left + (w - left) * (i + HISTORY - l.data.length) / (HISTORY - 1);
      const y = bottom - (bottom - 6) * Math.min(v, top) / top;
      i ? g.lineTo(x, y) : g.moveTo(x, y);
    });
    g.stroke();
  }
}

function push(list, v) { list.push(v); if (list.length > HISTORY) list.shift(); }

function render(s, dt) {
  const p = previous ? previous.stats : null;
  const routes = Object.entries(s.routes);
  let inRate = 0, outRate = 0, bytesRate = 0;
  const routeRows = routes.map(([name, r]) => {
    const pr = p && p.routes[name];
    const ri = rate(r.messages.to_upstream, pr && pr.messages.to_upstream, dt);
    const ro = rate(r.messages.to_client, pr && pr.messages.to_client, dt);
    inRate += ri; outRate += ro;
    bytesRate += rate(r.bytes.to_upstream + r.bytes.to_client,
                      pr && pr.bytes.to_upstream + pr.bytes.to_client, dt);
    const closed = Object.entries(r.closed).map(([c, n]) => `${c}: ${fmt(n)}`).join(", ") || "–";
    return `<tr data-route="${esc(name)}"><td>${esc(name)}</td><td class="n active">${r.active}</td>` +
      `<td class="n accepted">${r.accepted}</td><td class="n">${ri.toFixed(1)}</td>` +
      `<td class="n">${ro.toFixed(1)}</td><td class="n messages-in">${r.messages.to_upstream}</td>` +
      `<td class="n messages-out">${r.messages.to_client}</td><td>${closed}</td></tr>`;
  });
  rows("routes", routeRows, "no traffic yet");
  $("active-total").textContent = s.connections.active;
  $("accepted-total").textContent = s.connections.accepted;
  $("refused-total").textContent = sum(s.handshakes_refused);
  $("msgs-in-rate").textContent = inRate.toFixed(1);
  $("msgs-out-rate").textContent = outRate.toFixed(1);
  $("bytes-rate").textContent = fmt(bytesRate);
  push(series.in, inRate); push(series.out, outRate); push(series.active, s.connections.active);
  // "out" dashed under "in": an echo makes the two lines coincide.
  draw($("chart-msgs"), [{data: series.out, color: "#d9480f", dash: [6, 4]},
                         {data: series.in, color: "#1f6feb"}]);
  draw($("chart-active"), [{data: series.active, color: "#1b1f24"}]);

  rows("refusals", Object.entries(s.handshakes_refused).map(([status, n]) =>
    `<tr data-status="${status}"><td>${status} ${REASONS[status] || ""}</td><td class="n">${n}</td></tr>`), "none");
  const ups = [];
  for (const [cluster, eps] of Object.entries(s.upstreams)) {
    for (const [ep, u] of Object.entries(eps)) {
      const cls = u.reachable === null ? "" : u.reachable ? "up" : "down";
      ups.push(`<tr><td><span class="dot ${cls}"></span>${esc(cluster)} ${esc(ep)}</td>` +
        `<td class="n">${u.connect_ms.count ? u.connect_ms.avg.toFixed(2) + " ms" : "–"}</td>` +
        `<td class="n">${u.connect_failures}</td></tr>`);
    }
  }
  rows("upstreams", ups, "no cluster");
  const events = [];
  for (const [route, names] of Object.entries(s.events)) {
    for (const [name, n] of Object.entries(names)) {
      const before = p && p.events[route] && p.events[route][name];
      events.push([n, `<tr><td>${esc(route)}</td><td>${esc(name)}</td><td class="n">${n}</td>` +
        `<td class="n">${rate(n, before, dt).toFixed(1)}</td></tr>`]);
    }
  }
  events.sort((a, b) => b[0] - a[0]);
  rows("events", events.slice(0, 10).map((e) => e[1]), "no Socket.IO events");
  const actions = [];
  for (const [filter, as] of Object.entries(s.filter_actions)) {
    for (const [action, n] of Object.entries(as)) {
      actions.push(`<tr><td>${esc(filter)}</td><td>${esc(action)}</td><td class="n">${n}</td></tr>`);
    }
  }
  rows("filters", actions, "no filter action");
  const l = s.relay_latency_ms;
  rows("latency", l.count ? [`<tr><td>batches</td><td class="n">${fmt(l.count)}</td></tr>`,
    `<tr><td>average</td><td class="n">${l.avg.toFixed(3)} ms</td></tr>`,
    `<tr><td>p50 ≤</td><td class="n">${l.p50} ms</td></tr>`,
    `<tr><td>p99 ≤</td><td class="n">${l.p99} ms</td></tr>`] : [], "no traffic yet");
}

// The [admin] token, typed in once per tab; kept in sessionStorage, sent only as a header.
let token = sessionStorage.getItem("wsbridge-admin-token") || "";
const get = (path) => fetch(path, {cache: "no-store",
                                   headers: token ? {Authorization: "Bearer " + token} : {}});
$("login").addEventListener("submit", (e) => {
  e.preventDefault();
  token = $("token").value;
  sessionStorage.setItem("wsbridge-admin-token", token);
  $("login").hidden = true;
  clearTimeout(timer);
  poll();
});

let timer = 0;
async function poll() {
  try {
    const [statsRes, readyRes] = await Promise.all([get("stats"), get("ready")]);
    if (statsRes.status === 401) {
      $("state").textContent = token ? "wrong token" : "token needed";
      $("state").className = "pill bad";
      $("login").hidden = false;
      return;  // polling resumes when a token is typed in
    }
    const stats = await statsRes.json();
    const ready = await readyRes.json();
    const now = performance.now();
    const dt = previous ? (now - previous.at) / 1000 : 1;
    render(stats, dt);
    previous = {at: now, stats};
    const draining = (ready.reasons || []).includes("draining");
    $("state").textContent = ready.ready ? "ready" : draining ? "draining" : "not ready";
    $("state").className = "pill " + (ready.ready ? "ok" : "bad");
    $("state").title = (ready.reasons || []).join("\n");
    $("updated").textContent = "updated " + new Date().toLocaleTimeString();
    document.body.dataset.polls = String(Number(document.body.dataset.polls || 0) + 1);
  } catch (e) {
    $("state").textContent = "unreachable"; $("state").className = "pill bad";
  }
  timer = setTimeout(poll, 1000);
}
poll();
</script>
</body>
</html>
)html";

}  // namespace wsb::proxy
