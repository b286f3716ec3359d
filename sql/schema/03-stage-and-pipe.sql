-- Snowtap -> Snowflake, schema objects 3/5: the stage over the enrichers' container and the
-- auto-ingest pipe that loads every committed chunk into DNS_QUERIES_RAW.
--
-- Object names the enrichers commit (enricher/output/layout.ts), below the stage URL:
--   [<prefix>/]YYYY/MM/DD/HH/snowtap-<enricher_id>-<YYYYMMDDTHHMMSS.mmmZ>-<incarnation>-<seq>.csv[.gz|.zst]
--   [<prefix>/]tenant=<escaped tenant>/YYYY/MM/DD/HH/snowtap-...   (--partition-by tenant)
-- <prefix> is the --output-dir's path below the mounted container root, if any. With
-- --partition-by tenant the same one pipe loads every tenant's tree (([^/]+/)* takes the
-- tenant=<name>/ level); each row carries its tenant in the tenant column, so no column is
-- taken from the path. Chunks being written live under
-- _partial/<enricher_id>/[tenant=<name>/]...csv[.gz|.zst].partial next to owner.lock: the
-- PATTERN never matches them. Snowpipe trims the stage URL's path from each object name and
-- applies PATTERN to the rest; test/unit/snowflake-sql.test.ts checks that every name an
-- enricher can write matches exactly one pipe and that no partial or lock file matches any.
--
-- ON_ERROR = CONTINUE: a row Snowflake rejects is skipped and the rest of its chunk loads
-- (Snowpipe's default, SKIP_FILE, would drop the whole chunk for one bad row). Rejected rows
-- are reported to ERROR_INTEGRATION and by the queries in sql/monitoring.sql.
-- Load metadata comes from METADATA$ columns (see 01-raw-table.sql).
-- Changing the pipe: CREATE OR REPLACE PIPE (same text); do not follow it with
-- ALTER PIPE ... REFRESH unless you want the last 7 days of chunks loaded again (the view
-- hides the duplicates, the storage is paid twice).

CREATE STAGE IF NOT EXISTS SNOWTAP_STAGE
  URL = 'azure://<account>.blob.core.windows.net/<container>/'
  STORAGE_INTEGRATION = SNOWTAP_BLOB
  FILE_FORMAT = SNOWTAP_CSV;

CREATE PIPE IF NOT EXISTS SNOWTAP_ROWS_PIPE
  AUTO_INGEST = TRUE
  INTEGRATION = 'SNOWTAP_EVENTS'
  ERROR_INTEGRATION = SNOWTAP_ERRORS
  AS
  COPY INTO DNS_QUERIES_RAW (
    record_id, event_time, message_type, identity, protocol, family, query_address, query_port,
    response_address, response_port, qname, qtype, qclass, rcode, dns_id, answer_count, message_size,
    latency_us, ecs, tenant, policy_category, policy_action, matched_domain, sample_rate, agent_id,
    enricher_id,
    flags, opcode, edns_udp_size, edns_do, answers, dnstap_policy_type, dnstap_policy_rule,
    dnstap_policy_action, dnstap_policy_match, dnstap_policy_value, query_zone, client_key_id,
    source_file, source_row, loaded_at
  )
  FROM (
    SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20,
           $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, $33, $34, $35, $36, $37, $38,
           METADATA$FILENAME, METADATA$FILE_ROW_NUMBER, METADATA$START_SCAN_TIME
    FROM @SNOWTAP_STAGE
  )
  PATTERN = '^([^/]+/)*[0-9]{4}/[0-9]{2}/[0-9]{2}/[0-9]{2}/snowtap-[^/]+[.]csv([.]gz|[.]zst)?$'
  FILE_FORMAT = (FORMAT_NAME = 'SNOWTAP_CSV')
  ON_ERROR = CONTINUE;
