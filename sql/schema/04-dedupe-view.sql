-- Snowtap -> Snowflake, schema objects 4/5: DNS_QUERIES, one row per record_id.
--
-- At-least-once delivery repeats a record (same record_id, same content: the id is derived
-- from agent, incarnation, batch sequence and index, and the row from the same dnstap bytes)
-- when an acknowledgement is lost; the copies differ only in the load metadata. The earliest
-- load wins.
--
-- Pruning: the window is partitioned by (event_time, record_id), not by record_id alone. Copies
-- of a record share event_time, so they still meet in one partition, and a filter on event_time
-- (WHERE event_time >= ...) is a filter on a PARTITION BY column, which the optimizer applies
-- below the window: only the micro-partitions of that time range are read and sorted, instead
-- of all history on every query. (Caveat: copies written by two enricher versions that render a
-- record's event_time differently - e.g. one that newly leaves an out-of-range time empty -
-- land in different partitions and both stay visible.)
-- Rows with an empty event_time (a dnstap record without times, or a time past 9999 that the
-- enricher counted in snowtap_enricher_fields_out_of_range_total) have event_time NULL: they
-- are de-duplicated among themselves, and no time-range filter returns them; find them with
-- WHERE event_time IS NULL.
--
-- Cost: this view stores nothing; every query pays the window sort for the rows it reads
-- (proportional to the time range). The alternative is a materialized copy, for workloads that
-- read the same ranges again and again; it stores the table a second time (minus duplicates)
-- and costs a warehouse refresh per TARGET_LAG:
--   CREATE DYNAMIC TABLE DNS_QUERIES_DEDUPED TARGET_LAG = '15 minutes' WAREHOUSE = <warehouse>
--     AS SELECT * FROM DNS_QUERIES;

CREATE OR REPLACE VIEW DNS_QUERIES COPY GRANTS AS
SELECT *
FROM DNS_QUERIES_RAW
QUALIFY ROW_NUMBER() OVER (
  PARTITION BY event_time, record_id
  ORDER BY loaded_at, source_file, source_row
) = 1;
