-- Snowtap -> Snowflake, schema objects 2/5: the CSV dialect the enrichers write.
--
-- The writer's guarantee (enricher/output/csv.ts, text-escape.ts): UTF-8 only; RFC 4180
-- quoting; every field holding `,` `"` `\` CR or LF is enclosed in double quotes; free text
-- from outside (dnstap identity, policy values) is written as lossless "Snowtap text" with `\\`,
-- `\xHH` and `\uHHHH` escapes, so no field is ever invalid UTF-8 or exactly `\N`. The rows load
-- unchanged under this format AND under a format left at Snowflake's defaults apart from
-- SKIP_HEADER = 1 and FIELD_OPTIONALLY_ENCLOSED_BY = '"' (tested for both: "option sets A and
-- B" in test/unit/snowflake-csv-fuzz.test.ts, with the reader in test/support/snowflake-csv.ts).
--
-- Options set away from Snowflake's defaults, and why:
--   ESCAPE_UNENCLOSED_FIELD = NONE   the default '\\' would rewrite qname escapes such as
--                                    \. \\ \065 in a field that is not enclosed
--   NULL_IF = ()                     the default ('\\N') turns a field reading \N into NULL;
--                                    empty fields are NULL through EMPTY_FIELD_AS_NULL
--   TIMESTAMP_FORMAT                 event_time is exactly this; times past 9999 are written
--                                    empty by the enricher (and counted), never +010000-...
--   ERROR_ON_COLUMN_COUNT_MISMATCH = FALSE   see "Upgrades" in 01-raw-table.sql
-- CREATE OR ALTER keeps an existing format (and the pipe that names it) and updates its options.

CREATE OR ALTER FILE FORMAT SNOWTAP_CSV
  TYPE = CSV
  COMPRESSION = AUTO
  FIELD_DELIMITER = ','
  RECORD_DELIMITER = '\r\n'
  SKIP_HEADER = 1
  FIELD_OPTIONALLY_ENCLOSED_BY = '"'
  ESCAPE = NONE
  ESCAPE_UNENCLOSED_FIELD = NONE
  EMPTY_FIELD_AS_NULL = TRUE
  NULL_IF = ()
  TIMESTAMP_FORMAT = 'YYYY-MM-DD"T"HH24:MI:SS.FF9"Z"'
  ENCODING = 'UTF8'
  REPLACE_INVALID_CHARACTERS = FALSE
  SKIP_BYTE_ORDER_MARK = TRUE
  ERROR_ON_COLUMN_COUNT_MISMATCH = FALSE;
