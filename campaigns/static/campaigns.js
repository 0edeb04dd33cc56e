"use strict";
(function () {
  const T = {
    ru: { running: "идёт", paused: "на паузе", done: "завершён", cancelled: "отменён",
          pause: "Пауза", resume: "Запустить", export: "CSV", created: "Создан обзвон №",
          targets: "пациентов", error: "Ошибка" },
    en: { title: "Campaigns", token: "API token", open: "Open", new: "New campaign", name: "Name",
          kind: "Kind", k_reminder: "Appointment reminder", k_confirmation: "Booking confirmation",
          k_feedback: "Post-visit feedback", k_recall: "Check-up recall (6 months)", k_custom: "Custom text",
          from: "Appointments from", to: "to", rules: "Remind", window: "Calling window", clinic: "Clinic",
          create: "Create (paused)", list: "Campaigns", state: "State", dialled: "Dialled",
          reached: "Reached", confirmed: "Confirmed", cancelled: "Cancelled", rescheduled: "Rescheduled",
          no_answer: "No answer", opted_out: "Opted out", running: "running", paused: "paused",
          done: "done", pause: "Pause", resume: "Run", export: "CSV", created: "Created campaign #",
          targets: "patients", error: "Error" },
  };
  let lang = localStorage.getItem("callserver-lang") || "ru";
  const ruText = new Map();
  const $ = (id) => document.getElementById(id);
  const t = (k) => (T[lang] && T[lang][k]) || (lang === "ru" && ruText.get(k)) || T.ru[k] || k;

  function token() {
    const m = /(?:^|[#&])token=([^&]+)/.exec(location.hash);
    if (m) { sessionStorage.setItem("callserver-token", decodeURIComponent(m[1])); history.replaceState(null, "", location.pathname); }
    return sessionStorage.getItem("callserver-token") || "";
  }
  async function api(path, opts) {
    const r = await fetch(path, Object.assign({ headers: { Authorization: "Bearer " + token(), "Content-Type": "application/json" } }, opts || {}));
    if (r.status === 401) { showLogin(); throw new Error("401"); }
    const body = await r.json();
    if (!r.ok) throw new Error(body.message || r.status);
    return body;
  }
  function translate() {
    document.documentElement.lang = lang;
    document.querySelectorAll("[data-t]").forEach((el) => {
      const k = el.dataset.t;
      if (!ruText.has(k)) ruText.set(k, el.textContent);
      el.textContent = lang === "ru" ? ruText.get(k) : t(k);
    });
    $("lang").textContent = lang === "ru" ? "EN" : "RU";
  }
  function cell(text, cls) { const td = document.createElement("td"); td.textContent = String(text); if (cls) td.className = cls; return td; }
  function render(items) {
    const tbody = $("rows");
    tbody.replaceChildren();
    for (const c of items) {
      const s = c.stats || {};
      const tr = document.createElement("tr");
      tr.append(cell(c.id), cell(c.name), cell(c.kind), cell(t(c.state)));
      for (const k of ["dialled", "reached", "confirmed", "cancelled", "rescheduled", "unreached", "opted_out"]) tr.append(cell(s[k] || 0, "n"));
      const act = document.createElement("td");
      if (c.state === "running" || c.state === "paused") {
        const b = document.createElement("button");
        b.textContent = c.state === "running" ? t("pause") : t("resume");
        b.onclick = () => api("/api/campaigns/" + c.id + "/state", { method: "POST", body: JSON.stringify({ state: c.state === "running" ? "paused" : "running" }) }).then(load, fail);
        act.append(b);
      }
      const a = document.createElement("a");
      a.textContent = t("export"); a.href = "#";
      a.onclick = (e) => { e.preventDefault(); download(c.id); };
      act.append(" ", a);
      tr.append(act);
      tbody.append(tr);
    }
  }
  async function download(id) {
    const r = await fetch("/api/campaigns/" + id + "/export.csv", { headers: { Authorization: "Bearer " + token() } });
    const url = URL.createObjectURL(await r.blob());
    const a = document.createElement("a"); a.href = url; a.download = "campaign-" + id + ".csv"; a.click();
    URL.revokeObjectURL(url);
  }
  function fail(e) { $("msg").textContent = t("error") + ": " + e.message; }
  async function load() { render((await api("/api/campaigns")).campaigns); }
  function showLogin() { $("login").hidden = false; $("main").hidden = true; }
  $("login-form").onsubmit = (e) => { e.preventDefault(); sessionStorage.setItem("callserver-token", $("token-input").value); start(); };
  $("lang").onclick = () => { lang = lang === "ru" ? "en" : "ru"; localStorage.setItem("callserver-lang", lang); translate(); load().catch(fail); };
  $("create").onsubmit = (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    const kind = f.get("kind");
    const source = kind === "feedback" ? { type: "feedback", days_ago: 1 } : kind === "recall" ? { type: "recall", months: 6 }
      : kind === "custom" ? { type: "csv" } : { type: "appointments", date_from: f.get("date_from"), date_to: f.get("date_to") };
    const settings = { rules: String(f.get("rules")).split(",").map((x) => x.trim()).filter(Boolean), window: f.get("window"), clinic_name: f.get("clinic_name") };
    api("/api/campaigns", { method: "POST", body: JSON.stringify({ name: f.get("name"), kind, settings, source }) })
      .then((r) => { $("msg").textContent = t("created") + r.id + " — " + r.targets + " " + t("targets"); return load(); }, fail);
  };
  function start() {
    if (!token()) { showLogin(); return; }
    $("login").hidden = true; $("main").hidden = false;
    translate();
    load().catch(fail);
    setInterval(() => load().catch(fail), 5000);
  }
  start();
})();
