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

_PER_CALLER = """
           count(*) AS calls,
           count(*) FILTER (WHERE f.answered) AS answered,
           count(*) FILTER (WHERE f.called_back) AS called_back,
           count(*) FILTER (WHERE f.reached) AS reached,
           bool_or(f.known) AS known,
           bool_or(f.appointment_id IS NOT NULL) AS booked,
           bool_or(f.appointment_status = 'came') AS came,
           bool_or(f.appointment_status IN ('came', 'no_show')) AS visit_known"""

_SUMMARY = """
WITH f AS NOT MATERIALIZED ({facts}),
per_caller AS MATERIALIZED (
    SELECT f.caller_key, min({dim} COLLATE "C") AS key,
           min({dim} COLLATE "C") <> max({dim} COLLATE "C") AS mixed,{per_caller}
    FROM f
    GROUP BY f.caller_key
),
mixed AS MATERIALIZED (
    SELECT {dim} COLLATE "C" AS key, f.caller_key,{per_caller}
    FROM f
    WHERE f.caller_key IN (SELECT caller_key FROM per_caller WHERE mixed)
    GROUP BY 1, f.caller_key
),
per_key AS (
    SELECT key, calls, answered, called_back, reached, known, booked, came, visit_known
    FROM per_caller WHERE NOT mixed
    UNION ALL
    SELECT key, calls, answered, called_back, reached, known, booked, came, visit_known
    FROM mixed
)
SELECT key, sum(calls)::bigint AS calls, count(*) AS unique_callers,
       count(*) FILTER (WHERE NOT known) AS new_callers,
       count(*) FILTER (WHERE known) AS returning_callers,
       sum(answered)::bigint AS answered, (sum(calls) - sum(answered))::bigint AS missed,
       sum(called_back)::bigint AS called_back, sum(reached)::bigint AS reached,
       count(*) FILTER (WHERE booked) AS booked, count(*) FILTER (WHERE came) AS came,
       count(*) FILTER (WHERE visit_known) AS visit_known, 0 AS level
FROM per_key GROUP BY key
UNION ALL
SELECT NULL, sum(calls)::bigint, count(*), count(*) FILTER (WHERE NOT known),
       count(*) FILTER (WHERE known), sum(answered)::bigint,
       (sum(calls) - sum(answered))::bigint, sum(called_back)::bigint, sum(reached)::bigint,
       count(*) FILTER (WHERE booked), count(*) FILTER (WHERE came),
       count(*) FILTER (WHERE visit_known), 1
FROM per_caller
HAVING count(*) > 0
ORDER BY level, calls DESC, key
"""
SUMMARY_SETTINGS = ("SET LOCAL random_page_cost = 1.1",)
"""For the summary: read the calls in caller order from ``dashboards_call_facts_caller`` (an
index-only scan, one streaming aggregate, no hash table of every caller), as the planner does
on SSD storage; PostgreSQL's default (4, spinning disks) makes it hash 1,000,000 rows."""


def summary_sql(dimension: str) -> str:
    """The marketer report over the rollup, grouped by ``dimension``, plus a total row (key
    NULL). One aggregate of the calls per caller gives the total row (each caller once) and,
    for the callers seen under one key only (nearly all: a patient keeps calling the same
    number), their row of the group; the few callers seen under several keys are aggregated
    again per (key, caller), from their own calls only."""
    return _SUMMARY.format(facts=_FACTS, dim=f"f.{DIMENSIONS[dimension]}", per_caller=_PER_CALLER)


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
