-- Snowtap -> Snowflake: table, file format, stage, Snowpipe (auto-ingest) and a de-duplicating view.
--
-- Enrichers write CSV chunks (header row, RFC 4180, UTF-8, optionally gzip or zstd) to an Azure Blob
-- container mounted with blobfuse / the Blob CSI driver, under
--   YYYY/MM/DD/HH/snowtap-<enricher_id>-<utc timestamp>-<seq>.csv[.gz|.zst]
-- COMPRESSION = AUTO below recognises gzip and zstd by their magic bytes.
-- Files under _partial/ are chunks being written; the pipe's PATTERN never loads them.
--
-- Delivery is at-least-once: a batch re-sent after a lost acknowledgement produces rows with the
-- same record_id. Query DNS_QUERIES (the view), not DNS_QUERIES_RAW.
--
-- Replace the <...> placeholders. Each statement ends with ';' on its own line end; the test suite
-- (test/unit/sql.test.ts) checks the column list against the CSV contract and runs the view in DuckDB.

CREATE TABLE IF NOT EXISTS DNS_QUERIES_RAW (
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
  -- Load metadata: which chunk a row came from, and when it arrived.
  source_file       VARCHAR       DEFAULT NULL,
  loaded_at         TIMESTAMP_LTZ DEFAULT CURRENT_TIMESTAMP()
)
CLUSTER BY (TO_DATE(event_time));

CREATE FILE FORMAT IF NOT EXISTS SNOWTAP_CSV
  TYPE = CSV
  COMPRESSION = AUTO
  FIELD_DELIMITER = ','
  RECORD_DELIMITER = '\r\n'
  SKIP_HEADER = 1
  FIELD_OPTIONALLY_ENCLOSED_BY = '"'
  EMPTY_FIELD_AS_NULL = TRUE
  NULL_IF = ()
  TIMESTAMP_FORMAT = 'YYYY-MM-DD"T"HH24:MI:SS.FF9"Z"'
  ENCODING = 'UTF8'
  ERROR_ON_COLUMN_COUNT_MISMATCH = TRUE;

-- A storage integration lets Snowflake read the container without keys in SQL.
CREATE STORAGE INTEGRATION IF NOT EXISTS SNOWTAP_BLOB
  TYPE = EXTERNAL_STAGE
  STORAGE_PROVIDER = 'AZURE'
  ENABLED = TRUE
  AZURE_TENANT_ID = '<azure-tenant-id>'
  STORAGE_ALLOWED_LOCATIONS = ('azure://<account>.blob.core.windows.net/<container>/');

CREATE STAGE IF NOT EXISTS SNOWTAP_STAGE
  URL = 'azure://<account>.blob.core.windows.net/<container>/'
  STORAGE_INTEGRATION = SNOWTAP_BLOB
  FILE_FORMAT = SNOWTAP_CSV;

-- Auto-ingest on Azure: Event Grid -> storage queue -> this notification integration.
CREATE NOTIFICATION INTEGRATION IF NOT EXISTS SNOWTAP_EVENTS
  ENABLED = TRUE
  TYPE = QUEUE
  NOTIFICATION_PROVIDER = AZURE_STORAGE_QUEUE
  AZURE_STORAGE_QUEUE_PRIMARY_URI = 'https://<account>.queue.core.windows.net/<queue>'
  AZURE_TENANT_ID = '<azure-tenant-id>';

CREATE PIPE IF NOT EXISTS SNOWTAP_PIPE
  AUTO_INGEST = TRUE
  INTEGRATION = 'SNOWTAP_EVENTS'
  AS
  COPY INTO DNS_QUERIES_RAW (
    record_id, event_time, message_type, identity, protocol, family, query_address, query_port,
    response_address, response_port, qname, qtype, qclass, rcode, dns_id, answer_count, message_size,
    latency_us, ecs, tenant, policy_category, policy_action, matched_domain, sample_rate, agent_id,
    enricher_id, source_file
  )
  FROM (
    SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20,
           $21, $22, $23, $24, $25, $26, METADATA$FILENAME
    FROM @SNOWTAP_STAGE
  )
  PATTERN = '^[0-9]{4}/[0-9]{2}/[0-9]{2}/[0-9]{2}/snowtap-.*[.]csv([.]gz|[.]zst)?$'
  FILE_FORMAT = (FORMAT_NAME = 'SNOWTAP_CSV');

-- One row per record_id: duplicates from at-least-once delivery are identical except for load
-- metadata, so which copy wins does not matter; the earliest load is kept.
CREATE OR REPLACE VIEW DNS_QUERIES AS
SELECT * FROM DNS_QUERIES_RAW
QUALIFY ROW_NUMBER() OVER (PARTITION BY record_id ORDER BY loaded_at, source_file) = 1;
