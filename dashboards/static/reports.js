// Marketer reports, operator KPIs and staffing. Charts are server-side SVG fetched with the
// token and shown through blob: URLs in <img> (an SVG in <img> never runs scripts).
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const DAYS = { ru: ["Пн", "Вт", "Ср", "Чт", "Пт", "Сб", "Вс"], en: ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"] };
  let last = null, roles = { kpi: true };

  function query(extra) {
    const p = new URLSearchParams(new FormData($("filters")));
    for (const [k, v] of Object.entries(extra || {})) p.set(k, v);
    p.set("lang", I18N.lang);
    for (const [k, v] of [...p.entries()]) if (v === "") p.delete(k);
    return p.toString();
  }

  function renderMarketer(r) {
    const rows = [...r.rows, Object.assign({}, r.total, { key: I18N.t("total"), _total: true })];
    CS.fill($("marketer").querySelector("tbody"), rows, (tr, x) => {
      if (x._total) tr.className = "total";
      CS.cell(tr, x.key);
      for (const k of ["calls", "unique_callers", "new_callers", "returning_callers", "answered", "missed",
        "called_back", "reached", "booked"]) CS.cell(tr, x[k], "num");
      CS.cell(tr, CS.pct(x.conversion), "num"); CS.cell(tr, CS.pct(x.show_rate), "num");
    });
    $("note").textContent = r.crm ? "" : I18N.t("no_crm");
  }

  function renderOperators(r) {
    const rows = [...r.operators, Object.assign({}, r.team, { name: I18N.t("team"), _total: true })];
    CS.fill($("operators").querySelector("tbody"), rows, (tr, o) => {
      if (o._total) tr.className = "total";
      CS.cell(tr, o.name); CS.cell(tr, o.handled, "num"); CS.cell(tr, CS.dur(o.asa), "num");
      CS.cell(tr, CS.dur(o.aht), "num"); CS.cell(tr, o.missed, "num"); CS.cell(tr, CS.pct(o.conversion), "num");
      CS.cell(tr, o.callbacks, "num"); CS.cell(tr, CS.pct(o.on_time_rate), "num");
    });
  }

  function renderStaffing(r) {
    CS.fill($("staffing").querySelector("tbody"), r.rows, (tr, s) => {
      CS.cell(tr, (DAYS[I18N.lang] || DAYS.ru)[s.dow - 1]); CS.cell(tr, String(s.hour).padStart(2, "0") + ":00");
      CS.cell(tr, s.calls_per_hour, "num"); CS.cell(tr, CS.dur(s.aht), "num"); CS.cell(tr, s.needed, "num");
      CS.cell(tr, s.logged_in == null ? "—" : s.logged_in, "num");
      CS.cell(tr, s.short == null ? "—" : s.short, s.short ? "num bad" : "num");
    });
  }

  async function image(id, path) {
    const img = $(id);
    try { const url = await CS.blobUrl(path); if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src); img.src = url; }
    catch (e) { img.removeAttribute("src"); }
  }

  async function load() {
    const q = query();
    last = await CS.api("/api/dashboards/reports/marketer?" + q);
    renderMarketer(last);
    await Promise.all([
      image("chart-marketer", "/api/dashboards/reports/marketer?" + query({ format: "svg" })),
      image("chart-heatmap", "/api/dashboards/reports/heatmap?" + query({ format: "svg" })),
      image("chart-missed", "/api/dashboards/reports/heatmap?" + query({ format: "svg", metric: "missed" })),
    ]);
    if (!roles.kpi) return;
    try {
      renderOperators(await CS.api("/api/dashboards/reports/operators?" + q));
      renderStaffing(await CS.api("/api/dashboards/staffing?lang=" + I18N.lang));
      await image("chart-staffing", "/api/dashboards/staffing?format=svg&lang=" + I18N.lang);
    } catch (e) { if (e.status === 403) roles.kpi = false; else throw e; }
    document.body.dataset.loaded = "1";
  }

  async function downloadCsv() {
    const url = await CS.blobUrl("/api/dashboards/reports/marketer?" + query({ format: "csv" }));
    const a = CS.el("a"); a.href = url; a.download = "marketer.csv"; document.body.appendChild(a); a.click(); a.remove();
  }

  async function start() {
    CS.takeToken();
    $("login").hidden = true; $("main").hidden = false;
    try {
      const cfg = await CS.api("/api/dashboards/config");
      CS.state.tz = cfg.timezone;
      if (!I18N.saved()) I18N.set(cfg.language, false);
      const f = $("filters");
      if (!f.elements.to.value) f.elements.to.value = cfg.today;
      if (!f.elements.from.value) f.elements.from.value = cfg.today;
      const h = new URLSearchParams(location.search);
      for (const k of ["from", "to", "clinic", "source", "campaign", "did", "by"]) if (h.get(k)) f.elements[k].value = h.get(k);
    } catch (e) { if (e.status === 401 || e.status === 403) { $("login").hidden = false; $("main").hidden = true; return; } }
    I18N.apply();
    await load();
  }

  $("filters").addEventListener("submit", (e) => { e.preventDefault(); load(); });
  $("csv").addEventListener("click", downloadCsv);
  $("login-form").addEventListener("submit", (e) => { e.preventDefault();
    sessionStorage.setItem("callserver-token", $("token-input").value); start(); });
  CS.langSwitch(() => load());
  start();
})();
