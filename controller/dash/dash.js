// drover dashboard: polls the /v1 API every 2 s (signed in by its session
// cookie), the chosen app's log tail too (polling keeps no connection open,
// so the page also renders in a headless browser's virtual time).
"use strict";
const $ = (s) => document.querySelector(s);
let chosen = null, lastSeq = 0;

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}
function badge(state) { return el("span", state, "st " + state); }
function row(cells) {
  const tr = document.createElement("tr");
  for (const c of cells) {
    const td = document.createElement("td");
    if (c instanceof Node) td.appendChild(c); else td.textContent = c === null ? "-" : String(c);
    tr.appendChild(td);
  }
  return tr;
}
function fill(table, rows) {
  const body = $(table + " tbody");
  body.replaceChildren(...rows);
}
function ago(iso) {
  if (!iso) return "-";
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  return s < 60 ? s + " s ago" : s < 3600 ? Math.round(s / 60) + " min ago" : Math.round(s / 3600) + " h ago";
}
function bytes(n) {
  if (!n) return "-";
  const u = ["B", "KiB", "MiB", "GiB"]; let i = 0;
  while (n >= 1024 && i < 3) { n /= 1024; i++; }
  return n.toFixed(i ? 1 : 0) + " " + u[i];
}
async function get(path) {
  const r = await fetch(path, { credentials: "same-origin" });
  if (r.status === 401) throw new Error("signin");
  if (!r.ok) throw new Error((await r.json()).error || r.status);
  return r.json();
}

async function refresh() {
  try {
    const [status, nodes] = await Promise.all([get("/v1/status"), get("/v1/nodes")]);
    $("#signin").hidden = true;
    $("#board").hidden = false;
    fill("#nodes", nodes.map((n) => row([n.name, badge(n.state), n.address, n.instances,
                                         n.capacity, ago(n.last_seen)])));
    const ready = nodes.filter((n) => n.state === "ready").length;
    $("#summary").textContent = nodes.length + " node" + (nodes.length === 1 ? "" : "s") +
      " (" + ready + " ready), " + status.apps.length + " app" + (status.apps.length === 1 ? "" : "s");
    const deploys = await Promise.all(status.apps.map((a) => get("/v1/apps/" + a.name + "/deploy")));
    fill("#apps", status.apps.map((a, i) => {
      const form = a.types.map((t) => t.type + " " + t.up + "/" + t.desired).join(", ") || "-";
      const d = deploys[i], cell = document.createElement("span");
      if (d.state) {
        cell.appendChild(badge(d.state));
        const done = d.types.map((t) => t.type + " " + t.updated + "/" + t.desired).join(", ");
        cell.appendChild(el("span", " v" + d.release + (d.state === "running" ? ": " + done : ""), "muted"));
      } else cell.textContent = "-";
      const tr = row([a.name, a.release ? "v" + a.release : "-", form, cell]);
      tr.className = "pick" + (a.name === chosen ? " sel" : "");
      tr.onclick = () => choose(a.name);
      return tr;
    }));
    if (!chosen && status.apps.length > 0) choose(status.apps[0].name);
    else if (chosen) await refreshApp();
    $("#live").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (e) {
    if (e.message === "signin") { $("#signin").hidden = false; $("#board").hidden = true; }
    else $("#live").textContent = "error: " + e.message;
  }
}

function addLogs(lines) {
  const pre = $("#logs");
  const stick = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
  for (const l of lines) {
    if (l.seq <= lastSeq) continue;
    lastSeq = l.seq;
    pre.appendChild(document.createTextNode(l.ts.slice(11, 19) + " " + l.source + ": " + l.text + "\n"));
  }
  while (pre.childNodes.length > 500) pre.removeChild(pre.firstChild);
  if (stick) pre.scrollTop = pre.scrollHeight;
}

async function refreshApp() {
  const [ps, rel, logs] = await Promise.all([get("/v1/apps/" + chosen + "/ps"),
                                             get("/v1/apps/" + chosen + "/releases"),
                                             get("/v1/apps/" + chosen + "/logs?n=200")]);
  addLogs(logs);
  fill("#instances", ps.map((i) => row([i.name, badge(i.state), i.node,
    i.host ? i.host + ":" + i.port : "-", "v" + i.release, i.restarts, bytes(i.memory_bytes),
    i.memory_bytes || i.cpu_percent ? i.cpu_percent.toFixed(1) + " %" : "-"])));
  fill("#releases", rel.map((r) => row(["v" + r.version + (r.current ? " (current)" : ""),
    badge(r.status || "-"), r.description, ago(r.created)])));
}

function choose(app) {
  chosen = app;
  lastSeq = 0;
  $("#app").hidden = false;
  $("#app-title").textContent = app;
  $("#logs").textContent = "";
  refresh();
}

refresh();
setInterval(refresh, 2000);
