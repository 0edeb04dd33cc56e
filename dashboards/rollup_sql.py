"""SQL of the rollup (``dashboards_call_facts``). $1 is the watermark (rows changed since);
each statement's other parameters are in its docstring. Fixed fragments only: values are
parameters.
"""

from __future__ import annotations

_DECISION = """
    LEFT JOIN LATERAL (
        SELECT ad_source, campaign, clinic, patient_id FROM route_decisions d
        WHERE d.linkedid = c.id ORDER BY d.decided_at LIMIT 1
    ) rd ON true"""

_NO_DECISION = """
    LEFT JOIN (SELECT ''::text AS ad_source, ''::text AS campaign, ''::text AS clinic,
                      ''::text AS patient_id) rd ON true"""

_FACTS = """
INSERT INTO dashboards_call_facts AS f (call_id, started_at, phone, caller_key, did, source,
    campaign, clinic, queue, agent, local_dow, local_hour, known, answered, queued, wait_seconds,
    talk_seconds, rolled_at)
SELECT c.id, c.started_at, n.phone, hashtextextended(n.phone, 0), c.did,
       COALESCE(NULLIF(rd.ad_source, ''), c.ad_source), COALESCE(rd.campaign, ''),
       COALESCE(rd.clinic, ''), c.queue, CASE WHEN c.answered_at IS NULL THEN '' ELSE c.agent END,
       extract(isodow FROM c.started_at AT TIME ZONE $3::text),
       extract(hour FROM c.started_at AT TIME ZONE $3::text),
       COALESCE(rd.patient_id, '') <> '', c.answered_at IS NOT NULL, c.queued_at IS NOT NULL,
       COALESCE(c.wait_seconds, extract(epoch FROM c.answered_at - c.queued_at)),
       c.talk_seconds, $2::timestamptz
FROM calls c CROSS JOIN LATERAL (SELECT dashboards_phone(c.caller) AS phone) n {decision}
WHERE c.direction = 'inbound' AND c.state IN ('ended', 'abandoned')
  AND c.updated_at >= $1::timestamptz
ON CONFLICT (call_id) DO UPDATE SET
    started_at = EXCLUDED.started_at, phone = EXCLUDED.phone, caller_key = EXCLUDED.caller_key,
    did = EXCLUDED.did,
    source = EXCLUDED.source, campaign = EXCLUDED.campaign, clinic = EXCLUDED.clinic,
    queue = EXCLUDED.queue, agent = EXCLUDED.agent, local_dow = EXCLUDED.local_dow,
    local_hour = EXCLUDED.local_hour, known = EXCLUDED.known, answered = EXCLUDED.answered,
    queued = EXCLUDED.queued, wait_seconds = EXCLUDED.wait_seconds,
    talk_seconds = EXCLUDED.talk_seconds, rolled_at = EXCLUDED.rolled_at
"""


def facts_sql(has_decisions: bool) -> str:
    """Upsert facts of inbound calls finished (or changed) since $1; $2 = this run's start,
    $3 = the clinic's time zone."""
    return _FACTS.format(decision=_DECISION if has_decisions else _NO_DECISION)


CALLED_BACK = """
UPDATE dashboards_call_facts f
SET called_back = true, callback_agent = o.agent, callback_at = o.started_at
FROM (
    SELECT DISTINCT ON (phone) phone, agent, started_at FROM (
        SELECT dashboards_phone(o.did) AS phone, o.agent, o.started_at FROM calls o
        WHERE o.direction <> 'inbound' AND o.did <> '' AND o.updated_at >= $1::timestamptz
        UNION ALL
        SELECT dashboards_phone(o.caller), o.agent, o.started_at FROM calls o
        WHERE o.direction <> 'inbound' AND o.caller <> '' AND o.updated_at >= $1::timestamptz
    ) AS x ORDER BY phone, started_at
) o
WHERE f.phone = o.phone AND NOT f.answered AND NOT f.called_back
  AND f.started_at < o.started_at AND f.started_at > o.started_at - $2::float8 * interval '1 hour'
"""
"""A missed call is *called back* by a later outbound call to its number within $2 hours; the
first such call in a pass gives the operator and the time (callbacks on time, per operator)."""

REACHED = """
UPDATE dashboards_call_facts f SET reached = true
FROM (
    SELECT dashboards_phone(a.caller) AS phone, a.started_at FROM calls a
    WHERE a.answered_at IS NOT NULL AND a.caller <> '' AND a.updated_at >= $1::timestamptz
    UNION ALL
    SELECT dashboards_phone(a.did), a.started_at FROM calls a
    WHERE a.direction <> 'inbound' AND a.answered_at IS NOT NULL AND a.did <> ''
      AND a.updated_at >= $1::timestamptz
) o
WHERE f.phone = o.phone AND NOT f.answered AND NOT f.reached
  AND f.started_at < o.started_at AND f.started_at > o.started_at - $2::float8 * interval '1 hour'
"""
"""A missed call is *reached* by a later answered call with its number (either direction)."""

BOOKED_NEW_FACTS = """
UPDATE dashboards_call_facts f SET appointment_id = a.id, appointment_status = a.status
FROM crm_patient_phones p JOIN crm_appointments a ON a.patient_id = p.patient_id
WHERE f.rolled_at >= $3::timestamptz AND f.appointment_id IS NULL AND f.phone = p.phone
  AND a.created_at >= f.started_at AND a.created_at < f.started_at + $2::float8 * interval '1 hour'
  AND $1::timestamptz IS NOT NULL
"""
"""Calls rolled up in this pass ($3) that led to an appointment created within $2 hours."""

BOOKED_NEW_APPOINTMENTS = """
UPDATE dashboards_call_facts f SET appointment_id = a.id, appointment_status = a.status
FROM crm_appointments a JOIN crm_patient_phones p ON p.patient_id = a.patient_id
WHERE a.updated_at >= $1::timestamptz AND f.phone = p.phone AND f.appointment_id IS NULL
  AND f.started_at <= a.created_at AND f.started_at > a.created_at - $2::float8 * interval '1 hour'
"""
"""Appointments changed since $1 credited to the calls of the $2 hours before them. Together
with ``BOOKED_NEW_FACTS``: a call *booked* when its caller's patient got an appointment created
within the window after it."""

VISIT_STATUS = """
UPDATE dashboards_call_facts f SET appointment_status = a.status
FROM crm_appointments a
WHERE a.id = f.appointment_id AND a.updated_at >= $1::timestamptz
  AND f.appointment_status IS DISTINCT FROM a.status
"""
"""Booked appointments change status (confirmed, came, no-show): keep the facts' copy current."""
