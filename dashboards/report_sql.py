"""SQL of the marketer report, the heatmap, operator KPIs and staffing traffic.

Parameters common to the filtered queries: $1 range start, $2 range end (timestamptz, end
exclusive), $3 clinic, $4 source, $5 campaign, $6 DID (empty = any); each query's own follow.
Built from fragments because ``route_decisions`` (routing) and the ``crm_*`` tables (embedded
CRM) exist only when those plugins are enabled; only fixed text is ever spliced in, every
value is a bind parameter.
"""

from __future__ import annotations

DIMENSIONS = {"source": "source", "campaign": "campaign", "did": "did", "clinic": "clinic"}

_WITH_DECISIONS = """
    SELECT c.id, c.caller, c.did, c.started_at, c.answered_at, c.agent, c.wait_seconds,
           c.talk_seconds,
           COALESCE(NULLIF(rd.ad_source, ''), c.ad_source) AS source,
           COALESCE(rd.campaign, '') AS campaign, COALESCE(rd.clinic, '') AS clinic,
           COALESCE(rd.patient_id, '') <> '' AS known
    FROM calls c
    LEFT JOIN (
        SELECT DISTINCT ON (linkedid) linkedid, ad_source, campaign, clinic, patient_id
        FROM route_decisions
        WHERE decided_at >= $1::timestamptz - interval '1 hour' AND decided_at < $2::timestamptz
        ORDER BY linkedid, decided_at
    ) rd ON rd.linkedid = c.id
"""

_WITHOUT_DECISIONS = """
    SELECT c.id, c.caller, c.did, c.started_at, c.answered_at, c.agent, c.wait_seconds,
           c.talk_seconds, c.ad_source AS source, ''::text AS campaign, ''::text AS clinic,
           false AS known
    FROM calls c
"""

_FILTER = """
    WHERE c.direction = 'inbound' AND c.started_at >= $1 AND c.started_at < $2
"""

_OUTER_FILTER = """
    WHERE ($3::text = '' OR clinic = $3) AND ($4::text = '' OR source = $4)
      AND ($5::text = '' OR campaign = $5) AND ($6::text = '' OR did = $6)
"""


def base_cte(has_decisions: bool) -> str:
    """``base``: the filtered inbound calls with their tracking attributes."""
    inner = (_WITH_DECISIONS if has_decisions else _WITHOUT_DECISIONS) + _FILTER
    return f"base AS (SELECT * FROM ({inner}) AS b {_OUTER_FILTER})"


_BOOKED = """
callers AS (
    SELECT caller, min(started_at) AS first_call FROM base WHERE caller <> '' GROUP BY caller
),
booked AS (
    SELECT DISTINCT ON (cl.caller) cl.caller, a.status, a.starts_at
    FROM callers cl
    JOIN crm_patient_phones p ON p.phone = dashboards_phone(cl.caller)
    JOIN LATERAL (
        SELECT status, starts_at FROM crm_appointments a
        WHERE a.patient_id = p.patient_id AND a.created_at >= cl.first_call
          AND a.created_at < cl.first_call + $7::float8 * interval '1 hour'
        ORDER BY a.created_at LIMIT 1
    ) a ON true
    ORDER BY cl.caller
)"""

_NO_BOOKED = """
booked AS (SELECT ''::text AS caller, ''::text AS status, now() AS starts_at
           WHERE $7::float8 IS NULL AND false)"""

_FLAGS = """
flags AS (
    SELECT b.{dim} AS key, b.caller, b.answered_at IS NOT NULL AS answered, b.known,
        b.answered_at IS NULL AND b.caller <> '' AND (
            EXISTS (SELECT 1 FROM calls f WHERE f.direction <> 'inbound' AND f.did = b.caller
                    AND f.started_at > b.started_at
                    AND f.started_at < b.started_at + $8::float8 * interval '1 hour')
            OR EXISTS (SELECT 1 FROM calls f WHERE f.direction <> 'inbound'
                    AND f.caller = b.caller AND f.started_at > b.started_at
                    AND f.started_at < b.started_at + $8::float8 * interval '1 hour')
        ) AS called_back,
        b.answered_at IS NULL AND b.caller <> '' AND (
            EXISTS (SELECT 1 FROM calls f WHERE f.caller = b.caller
                    AND f.answered_at IS NOT NULL AND f.started_at > b.started_at
                    AND f.started_at < b.started_at + $8::float8 * interval '1 hour')
            OR EXISTS (SELECT 1 FROM calls f WHERE f.direction <> 'inbound' AND f.did = b.caller
                    AND f.answered_at IS NOT NULL AND f.started_at > b.started_at
                    AND f.started_at < b.started_at + $8::float8 * interval '1 hour')
        ) AS reached,
        bk.status AS appointment
    FROM base b LEFT JOIN booked bk ON bk.caller = b.caller
)"""

_SUMMARY = """
SELECT CASE WHEN GROUPING(key) = 1 THEN NULL ELSE key END AS key,
       count(*) AS calls,
       count(DISTINCT caller) AS unique_callers,
       count(DISTINCT caller) FILTER (WHERE NOT known) AS new_callers,
       count(DISTINCT caller) FILTER (WHERE known) AS returning_callers,
       count(*) FILTER (WHERE answered) AS answered,
       count(*) FILTER (WHERE NOT answered) AS missed,
       count(*) FILTER (WHERE called_back) AS called_back,
       count(*) FILTER (WHERE reached) AS reached,
       count(DISTINCT caller) FILTER (WHERE appointment IS NOT NULL) AS booked,
       count(DISTINCT caller) FILTER (WHERE appointment = 'came') AS came,
       count(DISTINCT caller) FILTER (WHERE appointment IN ('came', 'no_show')) AS visit_known
FROM flags
GROUP BY GROUPING SETS ((key), ())
ORDER BY GROUPING(key), count(*) DESC, key
"""


def summary_sql(dimension: str, has_decisions: bool, has_crm: bool) -> str:
    """The marketer report grouped by ``dimension`` plus a total row (key NULL).
    Extra parameters: $7 booking window (hours), $8 callback window (hours)."""
    dim = DIMENSIONS[dimension]
    booked = _BOOKED if has_crm else _NO_BOOKED
    return ("WITH " + base_cte(has_decisions) + "," + booked + "," + _FLAGS.format(dim=dim)
            + _SUMMARY)  # fmt: skip


def heatmap_sql(has_decisions: bool) -> str:
    """Calls and misses per ISO weekday (1 = Monday) and hour; $7 the clinic's time zone."""
    return ("WITH " + base_cte(has_decisions) + """
SELECT extract(isodow FROM started_at AT TIME ZONE $7)::int AS dow,
       extract(hour FROM started_at AT TIME ZONE $7)::int AS hour,
       count(*) AS calls, count(*) FILTER (WHERE answered_at IS NULL) AS missed
FROM base GROUP BY 1, 2 ORDER BY 1, 2""")  # fmt: skip


_BOOKED_CALL = """EXISTS (
            SELECT 1 FROM crm_patient_phones p
            JOIN crm_appointments a ON a.patient_id = p.patient_id
            WHERE p.phone = dashboards_phone(c.caller) AND a.created_at >= c.started_at
              AND a.created_at < c.started_at + $5::float8 * interval '1 hour')"""

_OPERATORS = """
WITH handled AS (
    SELECT agent, count(*) AS handled, avg(wait_seconds) AS asa, avg(talk_seconds) AS aht,
           count(DISTINCT caller) AS callers,
           count(DISTINCT caller) FILTER (WHERE booked) AS booked
    FROM (
        SELECT c.agent, c.caller, c.wait_seconds, c.talk_seconds, {booked} AS booked
        FROM calls c
        WHERE c.agent <> '' AND c.direction = 'inbound' AND c.answered_at IS NOT NULL
          AND c.started_at >= $1 AND c.started_at < $2
    ) AS h
    GROUP BY agent
), rings AS (
    SELECT payload->>'agent' AS agent, count(*) AS missed
    FROM call_events
    WHERE type = 'AgentRingNoAnswer' AND at >= $1 AND at < $2
    GROUP BY 1
), callbacks AS (
    SELECT f.agent, count(*) AS callbacks,
           count(*) FILTER (WHERE f.started_at - m.started_at
                            <= $3::float8 * interval '1 minute') AS on_time
    FROM calls m
    JOIN LATERAL (
        SELECT o.agent, o.started_at FROM calls o
        WHERE o.direction <> 'inbound' AND o.agent <> '' AND o.did = m.caller
          AND o.started_at > m.started_at
          AND o.started_at < m.started_at + $4::float8 * interval '1 hour'
        ORDER BY o.started_at LIMIT 1
    ) f ON true
    WHERE m.direction = 'inbound' AND m.answered_at IS NULL AND m.caller <> ''
      AND m.started_at >= $1 AND m.started_at < $2
    GROUP BY f.agent
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


def operators_sql(has_crm: bool) -> str:
    """Per operator over [$1, $2): calls handled, ASA, AHT, distinct callers and how many of
    them booked within $5 hours, missed rings, callbacks made (first outbound call to a missed
    number within $4 hours) and how many within $3 minutes of the miss."""
    booked = _BOOKED_CALL if has_crm else "($5::float8 IS NULL AND false)"
    return _OPERATORS.format(booked=booked)


STAFFING_SQL = """
SELECT extract(isodow FROM started_at AT TIME ZONE $3)::int AS dow,
       extract(hour FROM started_at AT TIME ZONE $3)::int AS hour,
       count(*) AS calls,
       avg(talk_seconds) FILTER (WHERE answered_at IS NOT NULL) AS aht
FROM calls
WHERE direction = 'inbound' AND started_at >= $1 AND started_at < $2
  AND queued_at IS NOT NULL AND ($4 = '' OR queue = $4)
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
