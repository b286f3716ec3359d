-- Snowtap -> Snowflake: is the pipe loading, and what did it reject? Run as SNOWTAP_LOADER
-- (or schedule these in an alert). With ON_ERROR = CONTINUE a rejected row does not stop its
-- chunk; these queries and the pipe's ERROR_INTEGRATION are where it shows.

-- The pipe's state, its backlog of notified files and the last error.
SELECT SYSTEM$PIPE_STATUS('SNOWTAP_ROWS_PIPE');

-- Chunks of the last 24 hours that did not load fully (PARTIALLY_LOADED = rows rejected).
SELECT file_name, status, row_count, row_parsed, error_count, first_error_message,
       first_error_line_number, first_error_column_name, last_load_time
FROM TABLE(INFORMATION_SCHEMA.COPY_HISTORY(
  TABLE_NAME => 'DNS_QUERIES_RAW',
  START_TIME => DATEADD(HOUR, -24, CURRENT_TIMESTAMP())))
WHERE status <> 'Loaded'
ORDER BY last_load_time DESC;

-- Every rejected row of the last 24 hours, with the reason and the line in its chunk.
SELECT *
FROM TABLE(VALIDATE_PIPE_LOAD(
  PIPE_NAME => 'SNOWTAP_ROWS_PIPE',
  START_TIME => DATEADD(HOUR, -24, CURRENT_TIMESTAMP())));

-- Freshness in Snowflake: the newest event loaded, and how far the loads lag behind it.
SELECT MAX(event_time) AS newest_event, MAX(loaded_at) AS newest_load
FROM DNS_QUERIES_RAW
WHERE loaded_at > DATEADD(HOUR, -1, CURRENT_TIMESTAMP());
