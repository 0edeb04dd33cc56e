// Live board: snapshot from /api/live + /api/calls, then domain events from /ws/live.
// Every value from the server is untrusted (caller IDs come from the phone network):
// text goes in with textContent only, never innerHTML.
"use strict";
(function () {
  const state = { calls: new Map(), agents: new Map(), recent: [], token: "" };
  const $ = (id) => document.getElementById(id);

  function takeToken() {
    const m = /(?:^|[#&])token=([^&]+)/.exec(location.hash);
    if (m) {
      sessionStorage.setItem("callserver-token", decodeURIComponent(m[1]));
      history.replaceState(null, "", location.pathname);
    }
    return sessionStorage.getItem("callserver-token") || "";
  }

  async function api(path) {
    const r = await fetch(path, { headers: { Authorization: "Bearer " + state.token } });
    if (r.status === 401) { showLogin(); throw new Error("unauthorized"); }
    if (!r.ok) throw new Error(path + " " + r.status);
    return r.json();
  }

  function showLogin() { $("login").hidden = false; $("main").hidden = true; }

  function cell(tr, text, cls) {
    const td = document.createElement("td");
    td.textContent = text == null ? "" : String(text);
    if (cls) td.className = cls;
    tr.appendChild(td);
  }

  function fill(tableId, rows, render) {
    const body = $(tableId).querySelector("tbody");
    body.replaceChildren();
    for (const row of rows) { const tr = document.createElement("tr"); render(tr, row); body.appendChild(tr); }
  }

  const STATUS = { not_inuse: "free", inuse: "in call", busy: "busy", ringing: "ringing",
    ringinuse: "ringing", onhold: "on hold", unavailable: "offline", invalid: "offline", unknown: "?" };
  const secs = (v) => (v == null ? "" : Math.round(v) + " s");
  const time = (v) => (v ? new Date(typeof v === "number" ? v * 1000 : v).toLocaleTimeString() : "");

  function render() {
    const now = Date.now() / 1000;
    const waiting = [...state.calls.values()].filter((c) => c.state === "queued" || c.state === "agent_ringing");
    waiting.sort((a, b) => (a.queued_at || a.started_at) - (b.queued_at || b.started_at));
    $("t-live").textContent = state.calls.size;
    $("t-waiting").textContent = waiting.length;
    const longest = waiting.length ? now - (waiting[0].queued_at || waiting[0].started_at) : 0;
    $("t-longest").textContent = Math.max(0, Math.round(longest)) + " s";
    $("t-answered").textContent = state.recent.filter((c) => c.answered_at).length;
    $("t-abandoned").textContent = state.recent.filter((c) => c.state === "abandoned").length;
    fill("waiting", waiting, (tr, c) => {
      cell(tr, c.caller_name && c.caller_name !== c.caller ? c.caller + " " + c.caller_name : c.caller);
      cell(tr, c.queue); cell(tr, c.ad_source); cell(tr, secs(now - (c.queued_at || c.started_at)));
    });
    const agents = [...state.agents.values()].sort((a, b) => a.interface.localeCompare(b.interface));
    fill("agents", agents, (tr, a) => {
      cell(tr, a.name || a.interface); cell(tr, (a.queues || []).join(", "));
      cell(tr, a.paused ? "paused " + (a.paused_reason || "") : STATUS[a.status] || a.status, a.paused ? "paused" : "status-" + a.status);
      cell(tr, a.calls_taken);
    });
    fill("recent", state.recent.slice(0, 40), (tr, c) => {
      cell(tr, time(c.started_at)); cell(tr, c.caller); cell(tr, c.ad_source); cell(tr, c.queue);
      cell(tr, c.agent); cell(tr, c.state, "state-" + c.state); cell(tr, secs(c.wait_seconds)); cell(tr, secs(c.talk_seconds));
    });
  }

  function onEvent(ev) {
    if (ev.agent) { state.agents.set(ev.agent.interface, ev.agent); }
    if (ev.call) {
      const c = ev.call;
      if (c.state === "ended" || c.state === "abandoned") {
        state.calls.delete(c.id);
        state.recent = [c, ...state.recent.filter((r) => r.id !== c.id)].slice(0, 200);
      } else { state.calls.set(c.id, c); }
    }
    if (ev.type === "ModelResynced") { loadSnapshot(); }
    scheduleRender();
  }

  let pending = false;
  function scheduleRender() { if (!pending) { pending = true; requestAnimationFrame(() => { pending = false; render(); }); } }

  async function loadSnapshot() {
    const live = await api("/api/live");
    state.calls = new Map((live.calls || []).map((c) => [c.id, c]));
    state.agents = new Map((live.agents || []).map((a) => [a.interface, a]));
    const recent = await api("/api/calls?limit=200");
    state.recent = recent.calls || [];
    render();
  }

  function connect() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(proto + "//" + location.host + "/ws/live?token=" + encodeURIComponent(state.token));
    ws.onopen = () => { $("conn").textContent = "live"; $("conn").className = "pill up"; loadSnapshot().catch(() => {}); };
    ws.onmessage = (m) => { try { onEvent(JSON.parse(m.data)); } catch (e) { console.warn(e); } };
    ws.onclose = () => { $("conn").textContent = "reconnecting…"; $("conn").className = "pill down"; setTimeout(connect, 2000); };
  }

  function start() {
    state.token = takeToken();
    if (!state.token) { showLogin(); return; }
    $("login").hidden = true; $("main").hidden = false;
    connect();
    setInterval(render, 1000);
  }

  $("login-form").addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem("callserver-token", $("token-input").value);
    start();
  });
  start();
})();
