// Supervisor board: one WebSocket (/ws/board) pushes the whole board about twice a second.
// Text from the server (caller IDs, names, reasons) goes in with textContent only.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  let last = null;

  function setConn(key) { const c = $("conn"); c.dataset.state = key; c.textContent = I18N.t(key);
    c.className = "pill " + (key === "live" ? "up" : "down"); }
  function showLogin() { $("login").hidden = false; $("main").hidden = true; }

  function renderQueues(queues) {
    CS.fill($("queues").querySelector("tbody"), queues, (tr, q) => {
      CS.cell(tr, q.name); CS.cell(tr, q.waiting, q.waiting ? "hot" : "");
      CS.cell(tr, CS.dur(q.longest_wait)); CS.cell(tr, CS.dur(q.estimated_wait));
      const low = (v) => (v != null && v < (last.policy.sl_target || 0.8) ? "bad" : "");
      CS.cell(tr, CS.pct(q.today.service_level), low(q.today.service_level));
      CS.cell(tr, CS.pct(q.last15.service_level), low(q.last15.service_level));
      CS.cell(tr, CS.pct(q.today.abandon_rate)); CS.cell(tr, CS.pct(q.last15.abandon_rate));
      CS.cell(tr, CS.dur(q.today.asa)); CS.cell(tr, CS.dur(q.last15.asa));
      CS.cell(tr, CS.dur(q.today.aht)); CS.cell(tr, CS.dur(q.last15.aht));
      CS.cell(tr, q.today.offered);
      if (q.overload === "overloaded") tr.className = "overloaded";
    });
  }

  function renderOperators(ops) {
    CS.fill($("agents").querySelector("tbody"), ops, (tr, o) => {
      CS.cell(tr, o.name);
      CS.cell(tr, I18N.t(o.state) + (o.reason ? " — " + o.reason : ""), "op-" + o.state);
      CS.cell(tr, o.caller ? o.caller + " · " + CS.dur(o.talk) : "");
      CS.cell(tr, o.calls_today); CS.cell(tr, o.missed_in_row, o.missed_in_row >= 3 ? "bad" : "");
      const td = document.createElement("td");
      if (o.state === "talking") {
        for (const mode of ["listen", "whisper", "barge"]) {
          const b = CS.el("button", I18N.t(mode), "spy");
          b.type = "button"; b.dataset.agent = o.interface; b.dataset.mode = mode;
          td.appendChild(b);
        }
      }
      tr.appendChild(td);
    });
  }

  function render() {
    if (!last) return;
    const b = last;
    renderQueues(b.queues);
    renderOperators(b.operators);
    CS.fill($("waiting").querySelector("tbody"), b.waiting, (tr, w) => {
      CS.cell(tr, w.caller_name && w.caller_name !== w.caller ? w.caller + " " + w.caller_name : w.caller);
      CS.cell(tr, w.queue); CS.cell(tr, w.ad_source); CS.cell(tr, CS.dur(w.wait));
    });
    CS.fill($("missed").querySelector("tbody"), b.missed.slice().reverse(), (tr, m) => {
      CS.cell(tr, m.caller); CS.cell(tr, m.queue); CS.cell(tr, CS.clock(m.missed_at)); CS.cell(tr, CS.dur(m.age));
    });
    const box = $("alarms");
    box.replaceChildren();
    if (!b.alarms.length) box.appendChild(CS.el("div", I18N.t("no_alarms"), "ok"));
    for (const a of b.alarms) {
      const value = a.kind === "low_service_level" ? CS.pct(a.value)
        : (a.kind === "long_wait" || a.kind === "overload") && a.value != null ? Math.round(a.value) : a.value;
      box.appendChild(CS.el("div", I18N.t("alarm_" + a.kind, { queue: a.queue, operator: a.operator, value }),
        "alarm alarm-" + a.kind));
    }
  }

  async function spy(agent, mode) {
    const phone = $("my-phone").value.trim();
    localStorage.setItem("callserver-my-phone", phone);
    try {
      await CS.api("/api/dashboards/spy", "POST", { agent, mode, supervisor: phone });
      $("spy-status").textContent = I18N.t("spy_started");
    } catch (e) { $("spy-status").textContent = I18N.t("spy_failed") + ": " + e.message; }
  }

  async function connect() {
    let ticket;
    try { ticket = (await CS.api("/api/dashboards/ticket", "POST")).ticket; }
    catch (e) { if (e.status === 401 || e.status === 403) { showLogin(); return; } setTimeout(connect, 2000); return; }
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(proto + "//" + location.host + "/ws/board?ticket=" + encodeURIComponent(ticket));
    ws.onopen = () => setConn("live");
    ws.onmessage = (m) => { try { last = JSON.parse(m.data); render(); } catch (e) { console.warn(e); } };
    ws.onclose = () => { setConn("reconnecting"); setTimeout(connect, 2000); };
  }

  async function start() {
    CS.takeToken();
    $("login").hidden = true; $("main").hidden = false;
    try {
      const cfg = await CS.api("/api/dashboards/config");
      CS.state.tz = cfg.timezone;
      if (!I18N.saved()) I18N.set(cfg.language, false);
    } catch (e) { if (e.status === 401 || e.status === 403) { showLogin(); return; } }
    I18N.apply(); setConn("connecting");
    connect();
  }

  $("my-phone").value = localStorage.getItem("callserver-my-phone") || "";
  $("agents").addEventListener("click", (e) => {
    const b = e.target.closest("button.spy");
    if (b) spy(b.dataset.agent, b.dataset.mode);
  });
  $("login-form").addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem("callserver-token", $("token-input").value);
    start();
  });
  CS.langSwitch(() => { setConn($("conn").dataset.state); render(); });
  start();
})();
