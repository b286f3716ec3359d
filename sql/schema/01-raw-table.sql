-- Snowtap -> Snowflake, schema objects 1/5: the raw table every chunk row lands in, as loaded.
-- Run as SNOWTAP_LOADER in <database>.<schema> after sql/account/. Query DNS_QUERIES (the view
-- in 04-dedupe-view.sql), not this table: delivery is at-least-once, so a record re-sent after a
-- lost acknowledgement appears here twice with the same record_id.
--
-- Columns: the first block is the CSV contract (README "Output: CSV chunks", enricher/output/csv.ts COLUMNS and
-- COLUMN_TYPES; test/unit/snowflake-sql.test.ts fails when they drift apart). The last block
-- is load metadata filled by the pipe from METADATA$ columns, not by DEFAULTs: Snowflake
-- advises METADATA$START_SCAN_TIME over CURRENT_TIMESTAMP() defaults inside Snowpipe.
--
-- Storage choices:
-- - TRANSIENT with 1 day of Time Travel: no 7-day Fail-safe copy of a high-volume log table.
--   The chunks in blob storage are the recovery path (keep them with a lifecycle rule for at
--   least as long as you want to be able to reload; see the README). Use a permanent table
--   and a longer DATA_RETENTION_TIME_IN_DAYS if the table must outlive the chunks.
-- - No clustering key by default: chunks arrive roughly in event_time order, so micro-partitions
--   already prune well on time ranges, and automatic reclustering is a standing credit cost.
--   If pruning on event_time degrades (late backfills with `snowtap convert`), turn it on:
--     ALTER TABLE DNS_QUERIES_RAW CLUSTER BY (TO_DATE(event_time));
--
-- Upgrades (columns are append-only; a release that appends columns lists them here):
--   0.2 (issue 9 step 4): flags VARCHAR, opcode VARCHAR, edns_udp_size INTEGER, edns_do BOOLEAN,
--   answers VARCHAR, dnstap_policy_type VARCHAR, dnstap_policy_rule VARCHAR,
--   dnstap_policy_action VARCHAR, dnstap_policy_match VARCHAR, dnstap_policy_value VARCHAR,
--   query_zone VARCHAR, client_key_id VARCHAR.
--   1. ALTER TABLE DNS_QUERIES_RAW ADD COLUMN <new column> <type>;   (for each new column)
--   2. re-run 03-stage-and-pipe.sql with CREATE OR REPLACE PIPE (its $n list grows);
--   3. then roll out the new enrichers.
-- The file format sets ERROR_ON_COLUMN_COUNT_MISMATCH = FALSE, so every mix loads instead of
-- failing: an older chunk (fewer fields) in the newer table loads NULL into the new columns;
-- a newer chunk reaching the pipe before step 2 loads its first columns and DROPS the appended
-- fields (so do 1-2 before 3). Both outcomes are tested (snowflake-sql.test.ts, "upgrades").
-- From the single sql/snowflake.sql of 0.1: ALTER TABLE DNS_QUERIES_RAW ADD COLUMN source_row
-- NUMBER(38, 0); ALTER TABLE DNS_QUERIES_RAW ALTER COLUMN loaded_at DROP DEFAULT; then run
-- 02-05 (the old table stays permanent; CREATE TRANSIENT TABLE ... AS SELECT and swap to change).

CREATE TRANSIENT TABLE IF NOT EXISTS DNS_QUERIES_RAW (
  record_id         VARCHAR       NOT NULL,
  event_time        TIMESTAMP_NTZ(9),
  message_type      VARCHAR,
  identity          VARCHAR,
  protocol          VARCHAR,
  family            VARCHAR,
  query_address     VARCHAR,
  query_port        INTEGER,
  response_address  VARCHAR,
  response_port     INTEGER,
  qname             VARCHAR,
  qtype             VARCHAR,
  qclass            VARCHAR,
  rcode             VARCHAR,
  dns_id            INTEGER,
  answer_count      INTEGER,
  message_size      INTEGER,
  latency_us        BIGINT,
  ecs               VARCHAR,
  tenant            VARCHAR,
  policy_category   VARCHAR,
  policy_action     VARCHAR,
  matched_domain    VARCHAR,
  sample_rate       INTEGER,
  agent_id          VARCHAR,
  enricher_id       VARCHAR,
  -- Appended by issue 9 step 4 (README "Output"): header flags ("qr aa rd ra"), opcode
  -- mnemonic, EDNS (OPT RR) UDP size and DO bit, the answer section as "TYPE rdata;..." text
  -- (bounded, "..." when cut), the dnstap Policy message (RPZ) and the dnstap query_zone.
  flags             VARCHAR,
  opcode            VARCHAR,
  edns_udp_size     INTEGER,
  edns_do           BOOLEAN,
  answers           VARCHAR,
  dnstap_policy_type   VARCHAR,
  dnstap_policy_rule   VARCHAR,
  dnstap_policy_action VARCHAR,
  dnstap_policy_match  VARCHAR,
  dnstap_policy_value  VARCHAR,
  query_zone        VARCHAR,
  -- Issue 9 step 1: which key made the client pseudonyms (--pseudonymize-clients), else NULL.
  client_key_id     VARCHAR,
  -- Load metadata (03-stage-and-pipe.sql): the chunk's path below the stage, the row's line in
  -- it (1 = first data row), and when Snowpipe started reading the chunk.
  source_file       VARCHAR,
  source_row        NUMBER(38, 0),
  loaded_at         TIMESTAMP_LTZ(9)
)
  DATA_RETENTION_TIME_IN_DAYS = 1
  COMMENT = 'Snowtap DNS query log rows as loaded (duplicates possible); query DNS_QUERIES';
