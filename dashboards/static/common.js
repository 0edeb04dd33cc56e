// Shared by the board and the reports: the token (or the desk's session cookie), JSON API calls,
// clinic-time formatting (24-hour). Every server value goes into the page as text only.
"use strict";
window.CS = (function () {
  const state = { token: "", tz: "Europe/Moscow" };
  function takeToken() {
    const m = /(?:^|[#&])token=([^&]+)/.exec(location.hash);
    if (m) {
      sessionStorage.setItem("callserver-token", decodeURIComponent(m[1]));
      history.replaceState(null, "", location.pathname + location.search);
    }
    state.token = sessionStorage.getItem("callserver-token") || "";
    return state.token;
  }
  function headers(extra) {
    const h = Object.assign({}, extra || {});
    if (state.token) h.Authorization = "Bearer " + state.token;
    return h;
  }
  async function request(method, path, body) {
    const init = { method, headers: headers(body ? { "Content-Type": "application/json" } : {}),
      credentials: "same-origin" };
    if (body) init.body = JSON.stringify(body);
    const r = await fetch(path, init);
    if (r.status === 401) { const e = new Error("unauthorized"); e.status = 401; throw e; }
    return r;
  }
  async function api(path, method, body) {
    const r = await request(method || "GET", path, body);
    const data = await r.json().catch(() => ({}));
    if (!r.ok) { const e = new Error(data.message || path); e.status = r.status; throw e; }
    return data;
  }
  async function blobUrl(path) {
    const r = await request("GET", path);
    if (!r.ok) throw new Error(path + " " + r.status);
    return URL.createObjectURL(await r.blob());
  }
  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text != null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function fill(tbody, rows, render) {
    tbody.replaceChildren();
    for (const row of rows) { const tr = document.createElement("tr"); render(tr, row); tbody.appendChild(tr); }
  }
  function cell(tr, text, cls) { tr.appendChild(el("td", text == null ? "" : text, cls)); }
  function clock(epoch) {
    if (!epoch) return "";
    return new Intl.DateTimeFormat("ru-RU", { timeZone: state.tz, hour: "2-digit", minute: "2-digit",
      hourCycle: "h23" }).format(new Date(epoch * 1000));
  }
  function dur(s) {
    if (s == null) return "—";
    s = Math.max(0, Math.round(s));
    const m = Math.floor(s / 60), r = s % 60;
    return m ? m + ":" + String(r).padStart(2, "0") : s + (I18N.lang === "en" ? " s" : " с");
  }
  function pct(v) { return v == null ? "—" : Math.round(v * 1000) / 10 + "%"; }
  function langSwitch(onChange) {
    for (const b of document.querySelectorAll("[data-lang]")) {
      b.addEventListener("click", () => { I18N.set(b.dataset.lang, true); onChange(); });
    }
  }
  return { state, takeToken, api, blobUrl, el, fill, cell, clock, dur, pct, langSwitch };
})();
