"""CSV and SVG output (escaping hostile text), staffing rows, and the [dashboards] config."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET

import pytest

from callserver.errors import ConfigError
from dashboards.config import DashboardsConfig, validate_dashboards
from dashboards.export import MARKETER_COLUMNS, marketer_csv, safe_cell, to_csv
from dashboards.staffing import Traffic, staffing_table
from dashboards.svg import bar_chart, heatmap

EVIL = '<script>alert(1)</script>&"'


def test_csv_neutralises_formulas_but_keeps_phone_numbers() -> None:
    assert safe_cell("=HYPERLINK(\"http://x\")").startswith("'=")
    assert safe_cell("-2+3") == "'-2+3" and safe_cell("@SUM(A1)") == "'@SUM(A1)"
    assert safe_cell("+74950000001") == "+74950000001"
    assert safe_cell(None) == "" and safe_cell(0.5) == "0.5"


def test_marketer_csv_has_russian_headers_bom_and_a_total_row() -> None:
    row = dict.fromkeys(MARKETER_COLUMNS, 1) | {"key": "=cmd"}
    report = {"by": "source", "rows": [row], "total": dict(row, key=None)}
    body = marketer_csv(report, "ru")
    assert body.startswith("\ufeff".encode())
    lines = list(csv.reader(io.StringIO(body.decode("utf-8-sig")), delimiter=";"))
    assert lines[0][:3] == ["Источник", "Звонки", "Уникальные"]
    assert lines[1][0] == "'=cmd" and lines[2][0] == "Итого"
    english = list(csv.reader(io.StringIO(marketer_csv(report, "en").decode("utf-8-sig")),
                              delimiter=";"))  # fmt: skip
    assert english[0][:2] == ["Source", "Calls"]
    assert to_csv(("x",), [], "ru").decode("utf-8-sig").strip() == "x"


def test_svg_is_well_formed_and_escapes_text() -> None:
    bars = bar_chart(EVIL, [EVIL, "b"], [("calls", [3, 0]), (EVIL, [1.5, 2])])
    root = ET.fromstring(bars)  # parses: nothing unescaped
    assert root.tag.endswith("svg")
    assert "<script" not in bars and "&lt;script&gt;" in bars
    grid = heatmap(EVIL, {(1, 10): 3.0, (7, 23): 1.0}, "ru")
    ET.fromstring(grid)
    assert grid.count("<rect") == 7 * 24 and ">Пн<" in grid and ">Вс<" in grid
    assert ">Mon<" in heatmap("t", {}, "en")


def test_staffing_rows_use_erlang_c_and_logged_in_samples() -> None:
    rows = staffing_table([Traffic(1, 10, 800, 180.0), Traffic(1, 11, 0, None)], 4,
                          {(1, 10): 12.0, (2, 9): 3.0}, sl_seconds=20, sl_target=0.8)  # fmt: skip
    by = {(r["dow"], r["hour"]): r for r in rows}
    # 800 calls over 4 weeks = 200 calls/h at 180 s = 10 Erlangs → 14 for 80% in 20 s
    assert (by[1, 10]["calls_per_hour"], by[1, 10]["erlangs"], by[1, 10]["needed"]) == (200, 10, 14)
    assert (by[1, 10]["logged_in"], by[1, 10]["short"]) == (12.0, 2)
    assert by[1, 10]["expected_sl"] == pytest.approx(0.6402, abs=1e-4)
    assert by[1, 11]["needed"] == 0
    assert (by[2, 9]["needed"], by[2, 9]["logged_in"], by[2, 9]["short"]) == (0, 3.0, 0)
    assert [(r["dow"], r["hour"]) for r in rows] == [(1, 10), (1, 11), (2, 9)]


@pytest.mark.parametrize(("field", "value"), [
    ("timezone", "Mars/Olympus"), ("sl_target", 1.5), ("language", "de"),
    ("overload_webhook_url", "ftp://x"), ("staffing_weeks", 0), ("push_interval", 0),
    ("short_abandon_seconds", -1), ("missed_in_row_alarm", 0),
])  # fmt: skip
def test_config_errors_name_the_key(field: str, value: object) -> None:
    with pytest.raises(ConfigError) as err:
        validate_dashboards(DashboardsConfig(**{field: value}))  # type: ignore[arg-type]
    assert err.value.details["key"] == f"dashboards.{field}"


def test_default_config_is_valid_and_hysteresis_halves_thresholds() -> None:
    cfg = DashboardsConfig()
    validate_dashboards(cfg)
    t = cfg.thresholds()
    assert (t.wait_raise, t.wait_clear, t.abandon_raise, t.abandon_clear) == (120, 60, 0.2, 0.1)
    assert (t.raise_after, t.clear_after) == (180, 300)


def test_grafana_dashboard_uses_only_metrics_the_plugin_exports() -> None:
    import json
    import re
    from pathlib import Path

    from dashboards.metrics import board_metrics

    path = Path(__file__).resolve().parents[2] / "dashboards" / "grafana"
    dashboard = json.loads((path / "callserver-dashboards.json").read_text(encoding="utf-8"))
    used = {m for p in dashboard["panels"] for t in p["targets"]
            for m in re.findall(r"callserver_dashboards_\w+", t["expr"])}  # fmt: skip
    exported = {m.name for m in board_metrics(dict, lambda: 0, lambda: 0)}
    assert used and used <= exported
    assert {m.labels for m in board_metrics(dict, lambda: 0, lambda: 0)} <= {
        (), ("queue",), ("state",), ("operator",)}  # bounded label sets


def test_metrics_read_the_latest_board() -> None:
    from dashboards.metrics import board_metrics

    board = {"queues": [{"name": "reception", "waiting": 2, "longest_wait": 30.0,
                         "estimated_wait": None, "overload": "overloaded",
                         "today": {"service_level": 0.75, "asa": 12.0, "aht": 90.0,
                                   "offered": 8},
                         "last15": {"service_level": None, "abandon_rate": 0.1}}],
             "operators": [{"interface": "PJSIP/op101", "state": "talking", "calls_today": 4}],
             "missed_total": 3, "alarms": [{}]}  # fmt: skip
    read = {m.name: m.read() for m in board_metrics(lambda: board, lambda: 5, lambda: 1)}
    assert read["callserver_dashboards_queue_waiting"] == {("reception",): 2.0}
    assert read["callserver_dashboards_queue_service_level_15m"] == {}  # no figure, no sample
    assert read["callserver_dashboards_queue_overloaded"] == {("reception",): 1.0}
    by_state = read["callserver_dashboards_operators"]
    assert isinstance(by_state, dict)
    assert (by_state[("talking",)], by_state[("free",)]) == (1.0, 0.0)
    assert read["callserver_dashboards_operator_calls_today"] == {("PJSIP/op101",): 4.0}
    assert read["callserver_dashboards_missed_not_called_back"] == 3
    assert read["callserver_dashboards_overload_webhooks_total"] == 5
