// UI text: Russian first, English switchable (the choice is kept in localStorage).
"use strict";
window.I18N = (function () {
  const D = {
    ru: {
      title_board: "Панель супервизора", title_reports: "Отчёты", live: "на связи",
      connecting: "подключение…", reconnecting: "переподключение…", token: "Ключ доступа",
      open: "Открыть", queues: "Очереди", queue: "Очередь", waiting_now: "Ждут",
      longest: "Дольше всех", ewt: "Ожидание (оценка)", sl: "Уровень сервиса",
      abandon: "Брошенные", asa: "Ср. ожидание ответа", aht: "Ср. разговор", offered: "Поступило",
      today: "сегодня", last15: "15 мин", operators: "Операторы", operator: "Оператор",
      state: "Состояние", calls_today: "Звонков сегодня", missed_row: "Пропущено подряд",
      waiting: "Ожидают в очереди", caller: "Звонящий", source: "Источник", wait: "Ждёт",
      missed: "Пропущенные, ещё не перезвонили", missed_at: "Когда", age: "Давность",
      alarms: "Тревоги", no_alarms: "Тревог нет", free: "свободен", ringing: "звонит",
      talking: "разговаривает", wrapup: "постобработка", paused: "перерыв", offline: "не в сети",
      listen: "Слушать", whisper: "Суфлировать", barge: "Вмешаться", my_phone: "Мой телефон",
      spy_started: "Звоним на ваш телефон", spy_failed: "Не удалось", normal: "норма",
      overloaded: "перегрузка",
      alarm_overload: "Перегрузка очереди {queue}: сократите рекламу (ожидание {value} с)",
      alarm_long_wait: "Очередь {queue}: ждут {value} с", alarm_low_service_level:
        "Очередь {queue}: уровень сервиса {value}", alarm_missed_in_row:
        "{operator}: пропущено подряд {value}", alarm_callbacks_late:
        "Не перезвонили вовремя: {value}", reports: "Отчёты", board: "Панель",
      from: "С", to: "По", clinic: "Клиника", campaign: "Кампания", did: "Номер", by: "Группировать",
      apply: "Показать", csv: "Скачать CSV", marketer: "Звонки по источникам рекламы",
      key: "Группа", calls: "Звонки", unique_callers: "Уникальные", new_callers: "Новые",
      returning_callers: "Повторные", answered: "Отвечено", missed_calls: "Пропущено",
      called_back: "Перезвонили", reached: "Дозвонились", booked: "Записались",
      conversion: "Конверсия", show_rate: "Доходимость", total: "Итого", heatmap: "Тепловая карта",
      kpi: "Показатели операторов", handled: "Принято", callbacks: "Перезвонов",
      on_time: "Вовремя", team: "Команда", staffing: "Потребность в операторах (Erlang C)",
      dow: "День", hour: "Час", per_hour: "Звонков/час", needed: "Нужно", logged_in: "Было",
      short: "Не хватает", weeks: "Недель", no_crm: "CRM не подключена: записи и доходимость не считаются",
    },
    en: {
      title_board: "Supervisor board", title_reports: "Reports", live: "live",
      connecting: "connecting…", reconnecting: "reconnecting…", token: "Access token",
      open: "Open", queues: "Queues", queue: "Queue", waiting_now: "Waiting",
      longest: "Longest", ewt: "Est. wait", sl: "Service level", abandon: "Abandoned",
      asa: "ASA", aht: "AHT", offered: "Offered", today: "today", last15: "15 min",
      operators: "Operators", operator: "Operator", state: "State", calls_today: "Calls today",
      missed_row: "Missed in a row", waiting: "Waiting in queue", caller: "Caller",
      source: "Source", wait: "Waits", missed: "Missed, not yet called back",
      missed_at: "When", age: "Age", alarms: "Alarms", no_alarms: "No alarms", free: "free",
      ringing: "ringing", talking: "talking", wrapup: "wrap-up", paused: "paused",
      offline: "offline", listen: "Listen", whisper: "Whisper", barge: "Barge",
      my_phone: "My phone", spy_started: "Calling your phone", spy_failed: "Failed",
      normal: "normal", overloaded: "overloaded",
      alarm_overload: "Queue {queue} overloaded: reduce advertising (wait {value} s)",
      alarm_long_wait: "Queue {queue}: waiting {value} s", alarm_low_service_level:
        "Queue {queue}: service level {value}", alarm_missed_in_row:
        "{operator}: {value} missed in a row", alarm_callbacks_late:
        "Callbacks late: {value}", reports: "Reports", board: "Board",
      from: "From", to: "To", clinic: "Clinic", campaign: "Campaign", did: "Number", by: "Group by",
      apply: "Show", csv: "Download CSV", marketer: "Calls by ad source", key: "Group",
      calls: "Calls", unique_callers: "Unique", new_callers: "New",
      returning_callers: "Returning", answered: "Answered", missed_calls: "Missed",
      called_back: "Called back", reached: "Reached", booked: "Booked",
      conversion: "Conversion", show_rate: "Show rate", total: "Total", heatmap: "Heatmap",
      kpi: "Operator KPIs", handled: "Handled", callbacks: "Callbacks", on_time: "On time",
      team: "Team", staffing: "Operators needed (Erlang C)", dow: "Day", hour: "Hour",
      per_hour: "Calls/h", needed: "Needed", logged_in: "Logged in", short: "Short",
      weeks: "Weeks", no_crm: "No CRM: bookings and show rate are not counted",
    },
  };
  let lang = localStorage.getItem("callserver-lang") || document.documentElement.lang || "ru";
  function t(key, vars) {
    let s = (D[lang] && D[lang][key]) || D.ru[key] || key;
    for (const [k, v] of Object.entries(vars || {})) s = s.replace("{" + k + "}", String(v));
    return s;
  }
  function apply() {
    document.documentElement.lang = lang;
    for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  }
  function set(l, save) { if (D[l]) { lang = l; if (save) localStorage.setItem("callserver-lang", l); apply(); } }
  function saved() { return localStorage.getItem("callserver-lang"); }
  return { t, apply, set, saved, get lang() { return lang; } };
})();
