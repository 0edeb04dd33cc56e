"""Supervisors' live board, reports, KPIs and staffing (see ``dashboards/plugin.py``)."""
