"""SQL of the marketer report, the heatmap, operator KPIs and staffing traffic.

They read the rollup ``dashboards_call_facts`` (``dashboards.rollup``, which is where the
optional routing and CRM tables are joined); missed rings come from ``call_events``.
Parameters common to the filtered queries: $1 range start, $2 range end (timestamptz, end
exclusive), $3 clinic, $4 source, $5 campaign, $6 DID (empty = any); each query's own follow.
Only fixed text is ever spliced in; every value is a bind parameter.
"""

from __future__ import annotations

DIMENSIONS = {"source": "source", "campaign": "campaign", "did": "did", "clinic": "clinic"}

_FACTS = """
    SELECT f.* FROM dashboards_call_facts f
    WHERE f.started_at >= $1::timestamptz AND f.started_at < $2::timestamptz
      AND ($3::text = '' OR f.clinic = $3) AND ($4::text = '' OR f.source = $4)
      AND ($5::text = '' OR f.campaign = $5) AND ($6::text = '' OR f.did = $6)
"""

_SUMMARY = """
WITH f AS ({facts}),
per_caller AS MATERIALIZED (
    SELECT {dim} AS key, f.caller_key,
           count(*) AS calls,
           count(*) FILTER (WHERE f.answered) AS answered,
           count(*) FILTER (WHERE f.called_back) AS called_back,
           count(*) FILTER (WHERE f.reached) AS reached,
           bool_or(f.known) AS known,
           bool_or(f.appointment_id IS NOT NULL) AS booked,
           bool_or(f.appointment_status = 'came') AS came,
           bool_or(f.appointment_status IN ('came', 'no_show')) AS visit_known
    FROM f
    GROUP BY {dim}, f.caller_key
),
callers AS (
    SELECT bool_or(known) AS known, bool_or(booked) AS booked, bool_or(came) AS came,
           bool_or(visit_known) AS visit_known
    FROM per_caller GROUP BY caller_key
),
totals AS (
    SELECT sum(calls)::bigint AS calls, sum(answered)::bigint AS answered,
           sum(called_back)::bigint AS called_back, sum(reached)::bigint AS reached
    FROM per_caller
)
SELECT key, sum(calls)::bigint AS calls, count(*) AS unique_callers,
       count(*) FILTER (WHERE NOT known) AS new_callers,
       count(*) FILTER (WHERE known) AS returning_callers,
       sum(answered)::bigint AS answered, (sum(calls) - sum(answered))::bigint AS missed,
       sum(called_back)::bigint AS called_back, sum(reached)::bigint AS reached,
       count(*) FILTER (WHERE booked) AS booked, count(*) FILTER (WHERE came) AS came,
       count(*) FILTER (WHERE visit_known) AS visit_known, 0 AS level
FROM per_caller GROUP BY key
UNION ALL
SELECT NULL, t.calls, c.unique_callers, c.new_callers, c.returning_callers, t.answered,
       t.calls - t.answered, t.called_back, t.reached, c.booked, c.came, c.visit_known, 1
FROM totals t, (
    SELECT count(*) AS unique_callers, count(*) FILTER (WHERE NOT known) AS new_callers,
           count(*) FILTER (WHERE known) AS returning_callers,
           count(*) FILTER (WHERE booked) AS booked, count(*) FILTER (WHERE came) AS came,
           count(*) FILTER (WHERE visit_known) AS visit_known
    FROM callers
) c
WHERE t.calls IS NOT NULL
ORDER BY level, calls DESC, key
"""


def summary_sql(dimension: str) -> str:
    """The marketer report over the rollup, grouped by ``dimension``, plus a total row (key
    NULL). Unique callers are counted in two steps: one hash aggregate of the calls per
    (group, caller), then the groups and the callers over that much smaller set."""
    return _SUMMARY.format(facts=_FACTS, dim=f"f.{DIMENSIONS[dimension]}")


HEATMAP_SQL = """
SELECT local_dow AS dow, local_hour AS hour, count(*) AS calls,
       count(*) FILTER (WHERE NOT answered) AS missed
FROM (""" + _FACTS + """) AS f GROUP BY 1, 2 ORDER BY 1, 2"""
"""Calls and misses per ISO weekday (1 = Monday) and hour in the clinic's time zone."""


OPERATORS_SQL = """
WITH handled AS (
    SELECT agent, count(*) AS handled, avg(wait_seconds) AS asa, avg(talk_seconds) AS aht,
           count(DISTINCT caller_key) AS callers,
           count(DISTINCT caller_key) FILTER (WHERE appointment_id IS NOT NULL) AS booked
    FROM dashboards_call_facts
    WHERE agent <> '' AND started_at >= $1 AND started_at < $2
    GROUP BY agent
), rings AS (
    SELECT payload->>'agent' AS agent, count(*) AS missed
    FROM call_events
    WHERE type = 'AgentRingNoAnswer' AND at >= $1 AND at < $2
    GROUP BY 1
), callbacks AS (
    SELECT callback_agent AS agent, count(*) AS callbacks,
           count(*) FILTER (WHERE callback_at - started_at
                            <= $3::float8 * interval '1 minute') AS on_time
    FROM dashboards_call_facts
    WHERE callback_agent IS NOT NULL AND callback_agent <> ''
      AND started_at >= $1 AND started_at < $2
    GROUP BY callback_agent
)
SELECT a.agent, COALESCE(h.handled, 0) AS handled, h.asa, h.aht,
       COALESCE(h.callers, 0) AS callers, COALESCE(h.booked, 0) AS booked,
       COALESCE(r.missed, 0) AS missed, COALESCE(cb.callbacks, 0) AS callbacks,
       COALESCE(cb.on_time, 0) AS callbacks_on_time
FROM (SELECT agent FROM handled UNION SELECT agent FROM rings UNION SELECT agent FROM callbacks)
     AS a
LEFT JOIN handled h USING (agent) LEFT JOIN rings r USING (agent)
LEFT JOIN callbacks cb USING (agent)
ORDER BY a.agent
"""
"""Per operator over [$1, $2), from the rollup: calls handled, ASA, AHT, distinct callers and
how many of them booked, missed rings (timeline), callbacks made (the first outbound call to a
missed number) and how many within $3 minutes of the miss."""

STAFFING_SQL = """
SELECT local_dow AS dow, local_hour AS hour, count(*) AS calls,
       avg(talk_seconds) FILTER (WHERE answered) AS aht
FROM dashboards_call_facts
WHERE started_at >= $1 AND started_at < $2 AND queued AND ($3 = '' OR queue = $3)
GROUP BY 1, 2
"""

SAMPLES_SQL = """
SELECT extract(isodow FROM at AT TIME ZONE $3)::int AS dow,
       extract(hour FROM at AT TIME ZONE $3)::int AS hour,
       avg(n) AS logged_in
FROM (
    SELECT at, sum(logged_in) AS n FROM dashboards_agent_samples
    WHERE at >= $1 AND at < $2 AND ($4 = '' OR queue = $4)
    GROUP BY at
) s
GROUP BY 1, 2
"""
