// Operator desk. Plain JS, no dependencies. Every value from the server or a caller is put on
// the page as text (textContent), never as HTML.
"use strict";
(function () {
  const S = { me: null, csrf: "", lang: "ru", tz: "Europe/Moscow", tags: [], reasons: [],
              pops: new Map(), jobs: new Map(), ws: null, retry: 0, dialer: false,
              operators: new Map() };
  const $ = (id) => document.getElementById(id);

  function t(key) {
    const dict = window.DESK_I18N[S.lang] || window.DESK_I18N.ru;
    return dict[key] !== undefined ? dict[key] : key;
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  function locale() { return S.lang === "ru" ? "ru-RU" : "en-GB"; }
  function fmt(ts, withDate) {
    if (ts === null || ts === undefined) return "";
    const opts = { timeZone: S.tz, hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
    if (withDate) Object.assign(opts, { day: "2-digit", month: "2-digit" });
    return new Intl.DateTimeFormat(locale(), opts).format(new Date(ts * 1000));
  }
  function parseTs(value) {
    if (typeof value === "number") return value;
    const ms = Date.parse(value || "");
    return Number.isNaN(ms) ? null : ms / 1000;
  }

  async function api(method, path, body) {
    const headers = { "Accept": "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET") headers["X-CSRF-Token"] = S.csrf;
    const resp = await fetch(path, { method, headers, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body) });
    let data = null;
    try { data = await resp.json(); } catch (e) { data = null; }
    if (!resp.ok) {
      const err = new Error((data && data.message) || resp.statusText);
      err.status = resp.status;
      throw err;
    }
    return data;
  }

  function notice(text) { $("notice").textContent = text || ""; }

  // ---- i18n of the static page -----------------------------------------------------------
  function translatePage() {
    document.documentElement.lang = S.lang;
    document.querySelectorAll("[data-t]").forEach((n) => { n.textContent = t(n.dataset.t); });
    document.querySelectorAll("[data-ph]").forEach((n) => { n.placeholder = t(n.dataset.ph); });
    $("lang").textContent = S.lang === "ru" ? "EN" : "RU";
    $("pause-reason").placeholder = t("pause_reason");
    document.title = t("title");
  }

  // ---- session -----------------------------------------------------------------------------
  async function boot() {
    S.lang = localStorage.getItem("desk-lang") || "ru";
    translatePage();
    try {
      enter(await api("GET", "/api/desk/me"));
    } catch (e) {
      showLogin();
    }
  }

  function showLogin() {
    $("main").hidden = true;
    $("login").hidden = false;
  }

  function enter(me) {
    S.me = me.user; S.csrf = me.csrf; S.tz = me.timezone; S.tags = me.tags;
    S.reasons = me.reasons; S.dialer = me.dialer;
    if (!localStorage.getItem("desk-lang")) S.lang = me.language;
    translatePage();
    $("login").hidden = true;
    $("main").hidden = false;
    $("me").textContent = S.me.name;
    $("ext").textContent = S.me.extension || "";
    if (me.status) showStatus(me.status);
    const roles = new Set(S.me.roles);
    $("admin").hidden = !roles.has("admin");
    $("scripts-admin").hidden = !(roles.has("supervisor") || roles.has("admin"));
    connect();
    loadOperators().then(loadMissed);
    if (roles.has("admin")) loadUsers();
    if (!$("scripts-admin").hidden) loadScripts();
  }

  $("login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    $("login-error").textContent = "";
    try {
      enter(await api("POST", "/api/desk/login",
        { login: $("login-name").value, password: $("login-password").value }));
      $("login-password").value = "";
    } catch (e) {
      $("login-error").textContent = e.message;
    }
  });

  $("logout").addEventListener("click", async () => {
    try { await api("POST", "/api/desk/logout", {}); } catch (e) { /* the cookie may be gone */ }
    if (S.ws) S.ws.close();
    location.reload();
  });

  $("lang").addEventListener("click", () => {
    S.lang = S.lang === "ru" ? "en" : "ru";
    localStorage.setItem("desk-lang", S.lang);
    translatePage();
    for (const frame of [...S.pops.values()].map((p) => p.frame)) renderPop(frame);
    renderMissed();
  });

  setInterval(() => { $("clock").textContent = fmt(Date.now() / 1000, true); }, 1000);

  // ---- live frames -------------------------------------------------------------------------
  function connect() {
    const proto = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${proto}://${location.host}/ws/desk`);
    S.ws = ws;
    ws.onopen = () => {
      S.retry = 0;
      $("conn").textContent = t("live");
      $("conn").className = "badge";
      for (const id of [...S.pops.keys()]) removePop(id);  // the hello frames bring them back
    };
    ws.onmessage = (msg) => {
      let frame;
      try { frame = JSON.parse(msg.data); } catch (e) { return; }
      if (frame.type === "pop") renderPop(frame);
      else if (frame.type === "status") showStatus(frame);
      else if (frame.type === "dial_result") dialResult(frame);
      else if (frame.type === "callback_job" && frame.job) upsertJob(frame.job);
    };
    ws.onclose = () => {
      $("conn").textContent = t("offline");
      $("conn").className = "badge off";
      S.retry = Math.min(S.retry + 1, 6);
      setTimeout(connect, 300 * 2 ** S.retry);
    };
  }

  // ---- status ------------------------------------------------------------------------------
  function showStatus(st) {
    const badge = $("status-now");
    badge.textContent = t(st.status) + (st.status === "paused" && st.reason ? `: ${st.reason}` : "");
    badge.className = "badge " + st.status;
    badge.dataset.status = st.status;
  }
  $("status").addEventListener("change", () => { $("pause-reason").hidden = $("status").value !== "paused"; });
  $("status-apply").addEventListener("click", async () => {
    notice("");
    try {
      await api("POST", "/api/desk/status", { status: $("status").value, reason: $("pause-reason").value });
    } catch (e) { notice(e.message); }
  });

  // ---- screen-pop cards ----------------------------------------------------------------------
  function removePop(id) {
    const p = S.pops.get(id);
    if (p) p.node.remove();
    S.pops.delete(id);
    document.querySelector("#pops .empty").hidden = S.pops.size > 0;
  }

  function renderPop(frame) {
    if (frame.state === "gone" || frame.state === "closed") { removePop(frame.call_id); return; }
    const old = S.pops.get(frame.call_id);
    const draft = old ? saveDraft(old.node) : null;
    const node = buildCard(frame);
    if (old) old.node.replaceWith(node); else $("pops").prepend(node);
    if (draft) restoreDraft(node, draft);
    S.pops.set(frame.call_id, { frame, node });
    document.querySelector("#pops .empty").hidden = true;
  }

  function row(label, ...value) { return [el("dt", {}, label), el("dd", {}, ...value)]; }

  function buildCard(f) {
    const c = f.card;
    const p = c.patient;
    const head = el("div", { class: "head" },
      el("span", { class: "who" }, p ? p.name : (c.caller_name || c.caller)),
      p && p.vip ? el("span", { class: "vip" }, "VIP") : null,
      el("span", { class: "phone" }, c.caller),
      el("span", { class: "state" }, t("st_" + f.state)));
    const facts = el("dl", { class: "grid" },
      row(t("source"), c.ad_source || "—", c.paid ? " " : "", c.paid ? el("span", { class: "paid" }, t("paid_ad")) : null),
      row(t("queue"), c.queue || "—"),
      row(t("routing"), Object.entries(c.routing || {}).map(([k, v]) => `${k}: ${v}`).join("; ") || "—"));
    if (p) {
      facts.append(...row(t("age"), p.age === null ? "—" : `${p.age} ${t("years")}`));
      const a = p.next_appointment;
      facts.append(...row(t("next_appt"), a ? `${fmt(a.starts_at, true)} · ${a.doctor}${a.specialty ? " (" + a.specialty + ")" : ""}${a.clinic ? " · " + a.clinic : ""}` : "—"));
      facts.append(...row(t("plan"), p.plan_items.length ? el("ul", {}, p.plan_items.map((i) => el("li", {}, `${i.description} — ${i.price} ₽`))) : "—"));
      facts.append(...row(t("coordinator"), p.coordinator || "—"));
      if (p.notes) facts.append(...row(t("notes"), p.notes));
    } else if (c.lookup === "unavailable") {
      facts.append(...row(t("patient"), t("lookup_failed")));
    }
    const card = el("article", { class: "pop", "data-call-id": f.call_id, "data-state": f.state }, head, facts,
      el("div", { class: "script" }, el("strong", {}, c.script.title || ""), c.script.title ? " — " : "", c.script.body));
    if (!p && c.lookup === "unknown") card.append(newPatientForm(f));
    if (f.state === "talking") card.append(el("p", { class: "muted" }, `${t("st_talking")} ${fmt(f.answered_at)}`));
    if (f.state === "wrapup") card.append(outcomeForm(f));
    const box = dialBox(f);
    if (box) card.append(box);
    return card;
  }

  function newPatientForm(f) {
    const form = el("form", { class: "new-patient" },
      el("strong", {}, t("new_patient")), " ",
      el("input", { name: "full_name", placeholder: t("full_name"), maxlength: 120 }), " ",
      el("input", { name: "phone", value: f.card.caller, maxlength: 20 }), " ",
      el("input", { name: "comment", placeholder: t("comment"), maxlength: 500 }), " ",
      el("button", { type: "submit" }, t("send_to_crm")), el("span", { class: "np-result muted" }));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      try {
        await api("POST", `/api/desk/calls/${encodeURIComponent(f.call_id)}/new-patient`, {
          full_name: form.full_name.value, phone: form.phone.value, comment: form.comment.value });
        form.querySelector(".np-result").textContent = " " + t("sent");
      } catch (e) { form.querySelector(".np-result").textContent = " " + e.message; }
    });
    return form;
  }

  function outcomeForm(f) {
    const form = el("form", { class: "outcome" });
    if (f.talk_seconds) form.append(el("span", { class: "muted" }, `${t("talk")}: ${Math.round(f.talk_seconds)} ${t("sec")} `));
    if (f.recording) form.append(el("a", { href: f.recording, class: "recording", target: "_blank", rel: "noopener" }, t("recording")), " ");
    form.append(el("div", {}, el("strong", {}, t("tags") + ": "),
      S.tags.map((tag) => el("label", {}, el("input", { type: "checkbox", name: "tag", value: tag }), " ", t("tag_" + tag)))));
    form.append(el("div", {}, el("strong", {}, t("outcome") + ": "),
      ["booked", "not_booked", "info"].map((o) => el("label", {}, el("input", { type: "radio", name: "outcome", value: o, required: true }), " ", t(o))),
      el("select", { name: "reason" }, el("option", { value: "" }, "— " + t("reason") + " —"),
        S.reasons.map((r) => el("option", { value: r }, t("why_" + r))))));
    form.append(el("textarea", { name: "notes", rows: 2, maxlength: 2000, placeholder: t("notes") }));
    form.append(el("button", { type: "submit", class: "save-outcome" }, t("save_outcome")), " ",
      el("button", { type: "button", class: "dismiss", onclick: () => dismiss(f.call_id) }, t("dismiss")));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      notice("");
      const tags = [...form.querySelectorAll("input[name=tag]:checked")].map((i) => i.value);
      const outcome = (form.querySelector("input[name=outcome]:checked") || {}).value;
      try {
        await api("POST", `/api/desk/calls/${encodeURIComponent(f.call_id)}/outcome`,
          { tags, outcome, reason: form.reason.value, notes: form.notes.value });
      } catch (e) { notice(e.message); }
    });
    return form;
  }

  async function dismiss(callId) {
    try { await api("POST", `/api/desk/pops/${encodeURIComponent(callId)}/dismiss`, {}); }
    catch (e) { removePop(callId); }
  }

  function dialBox(f) {
    if (!S.dialer || f.state === "ringing") return null;
    const box = el("div", { class: "dial" },
      el("button", { type: "button", class: "call-back", onclick: () => dial(f.card.caller, { call_id: f.call_id }) }, t("call_back")),
      " ", el("span", { class: "dial-result" }, f.dial ? t("dial_" + f.dial.result) : ""));
    return box;
  }

  async function dial(phone, ref) {
    notice("");
    try {
      await api("POST", "/api/desk/dial", Object.assign({ phone }, ref));
      notice(t("dialing"));
    } catch (e) { notice(e.message); }
  }

  function dialResult(frame) {
    notice(`${frame.phone}: ${t("dial_" + frame.result)}`);
  }

  function saveDraft(node) {
    const form = node.querySelector("form.outcome");
    if (!form) return null;
    return [...form.elements].map((e) => [e.name, e.value, e.checked]);
  }
  function restoreDraft(node, draft) {
    const form = node.querySelector("form.outcome");
    if (!form) return;
    [...form.elements].forEach((e, i) => {
      if (!draft[i] || draft[i][0] !== e.name) return;
      if (e.type === "checkbox" || e.type === "radio") e.checked = draft[i][2]; else e.value = draft[i][1];
    });
  }

  // ---- missed calls (callbacks API) -----------------------------------------------------------
  async function loadOperators() {
    try {
      const data = await api("GET", "/api/desk/operators");
      for (const op of data.operators) S.operators.set(String(op.user_id), op.name);
    } catch (e) { /* names fall back to what the job carries */ }
  }
  function personName(id) { return S.operators.get(String(id)) || (S.me && String(S.me.id) === String(id) ? S.me.name : String(id)); }

  let missedError = "";
  async function loadMissed() {
    try {
      const [open, active] = await Promise.all([
        api("GET", "/api/callbacks/jobs?state=open&limit=50"),
        api("GET", "/api/callbacks/jobs?state=active&limit=50")]);
      S.jobs.clear();
      for (const job of [...open.jobs, ...active.jobs]) S.jobs.set(String(job.id), job);
      missedError = "";
    } catch (e) {
      missedError = t("missed_unavailable");
    }
    renderMissed();
  }

  function upsertJob(job) {
    if (job.state === "done") S.jobs.delete(String(job.id)); else S.jobs.set(String(job.id), job);
    renderMissed();
  }

  function renderMissed() {
    const box = $("missed");
    box.replaceChildren();
    if (missedError) { box.append(el("p", { class: "muted" }, missedError)); return; }
    if (!S.jobs.size) { box.append(el("p", { class: "muted" }, t("no_missed"))); return; }
    const jobs = [...S.jobs.values()].sort((a, b) => (parseTs(b.missed_at) || 0) - (parseTs(a.missed_at) || 0));
    for (const job of jobs) box.append(jobRow(job));
  }

  function jobRow(job) {
    const mine = job.claimed_by && S.me && (job.claimed_by === String(S.me.id) || job.claimed_by === S.me.name || job.claimed_by === S.me.login);
    const cls = job.state === "open" && !job.claimed_by ? "job open" : (mine ? "job mine" : "job");
    const row = el("div", { class: cls, "data-job-id": job.id },
      el("strong", {}, job.patient_name || job.phone), " ", el("span", { class: "muted" }, job.phone),
      el("div", { class: "muted" }, `${fmt(parseTs(job.missed_at), true)} · ${job.queue || ""} · ${job.reason || ""} · ${t("attempts")}: ${job.attempts || 0}`,
        job.claimed_by ? ` · ${t("claimed_by")}: ${personName(job.claimed_by)}` : ""));
    const actions = el("div", { class: "actions" });
    if (!job.claimed_by) actions.append(el("button", { type: "button", class: "claim", onclick: () => claim(job) }, t("claim")));
    if (S.dialer && (!job.claimed_by || mine)) actions.append(el("button", { type: "button", class: "call-back", onclick: () => dial(job.phone, { job_id: String(job.id) }) }, t("call_back")));
    if (mine) {
      const sel = el("select", { class: "job-result" }, ["reached", "booked", "not_needed", "no_answer", "busy"].map((r) => el("option", { value: r }, t("res_" + r))));
      actions.append(sel, el("button", { type: "button", class: "job-save", onclick: () => jobResult(job, sel.value) }, t("save")));
    }
    row.append(actions);
    return row;
  }

  async function claim(job) {
    notice("");
    try {
      const data = await api("POST", `/api/callbacks/jobs/${encodeURIComponent(job.id)}/claim`, {});
      upsertJob((data && data.job) || Object.assign({}, job, { state: "active", claimed_by: String(S.me.id) }));
    } catch (e) { notice(e.message); loadMissed(); }
  }

  async function jobResult(job, result) {
    notice("");
    try {
      const data = await api("POST", `/api/callbacks/jobs/${encodeURIComponent(job.id)}/result`, { result, note: "" });
      upsertJob((data && data.job) || Object.assign({}, job, { state: "done" }));
    } catch (e) { notice(e.message); }
  }

  // ---- admin: users, scripts ----------------------------------------------------------------
  async function loadUsers() {
    const data = await api("GET", "/api/desk/users");
    $("users").tBodies[0].replaceChildren(...data.users.map((u) =>
      el("tr", {}, el("td", {}, u.name), el("td", {}, u.login), el("td", {}, u.roles.join(", ")),
        el("td", {}, u.extension), el("td", {}, u.queues.join(", ")))));
  }
  $("user-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    notice("");
    try {
      await api("POST", "/api/desk/users", { name: f.elements.name.value, login: f.elements.login.value,
        password: f.elements.password.value, extension: f.elements.extension.value, roles: [f.elements.roles.value],
        queues: f.elements.queues.value.split(",").map((q) => q.trim()).filter(Boolean) });
      f.reset();
      loadUsers();
    } catch (e) { notice(e.message); }
  });

  async function loadScripts() {
    const data = await api("GET", "/api/desk/scripts");
    $("scripts").replaceChildren(...data.scripts.map((s) =>
      el("li", {}, el("strong", {}, s.segment), ": ", s.title, " — ", s.body)));
  }
  $("script-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    try {
      await api("PUT", `/api/desk/scripts/${encodeURIComponent(f.elements.segment.value)}`, { title: f.elements.title.value, body: f.elements.body.value });
      loadScripts();
    } catch (e) { notice(e.message); }
  });

  boot();
})();
