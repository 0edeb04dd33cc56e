"""SQL of the rollup (``dashboards_call_facts``). $1 is the watermark (rows changed since),
$2 the window in hours, $3 the start of this run. Fixed fragments only: values are parameters.
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
    campaign, clinic, queue, known, answered, queued, talk_seconds, rolled_at)
SELECT c.id, c.started_at, n.phone, hashtextextended(n.phone, 0), c.did,
       COALESCE(NULLIF(rd.ad_source, ''), c.ad_source), COALESCE(rd.campaign, ''),
       COALESCE(rd.clinic, ''), c.queue, COALESCE(rd.patient_id, '') <> '',
       c.answered_at IS NOT NULL, c.queued_at IS NOT NULL, c.talk_seconds, $2::timestamptz
FROM calls c CROSS JOIN LATERAL (SELECT dashboards_phone(c.caller) AS phone) n {decision}
WHERE c.direction = 'inbound' AND c.state IN ('ended', 'abandoned')
  AND c.updated_at >= $1::timestamptz
ON CONFLICT (call_id) DO UPDATE SET
    started_at = EXCLUDED.started_at, phone = EXCLUDED.phone, caller_key = EXCLUDED.caller_key,
    did = EXCLUDED.did,
    source = EXCLUDED.source, campaign = EXCLUDED.campaign, clinic = EXCLUDED.clinic,
    queue = EXCLUDED.queue, known = EXCLUDED.known, answered = EXCLUDED.answered,
    queued = EXCLUDED.queued, talk_seconds = EXCLUDED.talk_seconds, rolled_at = EXCLUDED.rolled_at
"""


def facts_sql(has_decisions: bool) -> str:
    """Upsert facts of inbound calls finished (or changed) since $1; $2 = this run's start."""
    return _FACTS.format(decision=_DECISION if has_decisions else _NO_DECISION)


CALLED_BACK = """
UPDATE dashboards_call_facts f SET called_back = true
FROM (
    SELECT dashboards_phone(o.did) AS phone, o.started_at FROM calls o
    WHERE o.direction <> 'inbound' AND o.did <> '' AND o.updated_at >= $1::timestamptz
    UNION ALL
    SELECT dashboards_phone(o.caller), o.started_at FROM calls o
    WHERE o.direction <> 'inbound' AND o.caller <> '' AND o.updated_at >= $1::timestamptz
) o
WHERE f.phone = o.phone AND NOT f.answered AND NOT f.called_back
  AND f.started_at < o.started_at AND f.started_at > o.started_at - $2::float8 * interval '1 hour'
"""
"""A missed call is *called back* by a later outbound call to its number within $2 hours."""

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

BOOKED = """
UPDATE dashboards_call_facts f SET appointment_id = a.id, appointment_status = a.status
FROM crm_patient_phones p JOIN crm_appointments a ON a.patient_id = p.patient_id
WHERE f.phone = p.phone AND f.appointment_id IS NULL
  AND a.created_at >= f.started_at AND a.created_at < f.started_at + $2::float8 * interval '1 hour'
  AND (a.updated_at >= $1::timestamptz OR f.rolled_at >= $3::timestamptz)
"""
"""A call *booked* when its caller's patient got an appointment created within $2 hours after
it (checked for new facts and for appointments changed since $1)."""

VISIT_STATUS = """
UPDATE dashboards_call_facts f SET appointment_status = a.status
FROM crm_appointments a
WHERE a.id = f.appointment_id AND a.updated_at >= $1::timestamptz
  AND f.appointment_status IS DISTINCT FROM a.status
"""
"""Booked appointments change status (confirmed, came, no-show): keep the facts' copy current."""
