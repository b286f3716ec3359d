-- Snowtap -> Snowflake, part 1 of 2: ACCOUNT-level objects. Run once, as ACCOUNTADMIN (or a
-- role with CREATE ROLE and CREATE INTEGRATION), before the sql/schema/ files.
--
-- Order of the whole install:
--   sql/account/01-roles-and-integrations.sql   this file (then the consent steps below)
--   sql/schema/01-raw-table.sql ... 05-grants.sql, in file-name order, as SNOWTAP_LOADER
--   sql/monitoring.sql                           queries to run (or schedule) afterwards
-- Replace the <...> placeholders everywhere. Statements end with ';' at a line end (the
-- tests in test/unit/snowflake-sql.test.ts read these files).

-- SNOWTAP_LOADER owns the schema objects (table, file format, stage, pipe, view) and is the
-- role Snowpipe loads as; SNOWTAP_READER only reads the de-duplicating view.
CREATE ROLE IF NOT EXISTS SNOWTAP_LOADER;
CREATE ROLE IF NOT EXISTS SNOWTAP_READER;
GRANT ROLE SNOWTAP_READER TO ROLE SNOWTAP_LOADER;

-- Read access to the container the enrichers write, without keys in SQL.
-- Consent: DESC STORAGE INTEGRATION SNOWTAP_BLOB; open AZURE_CONSENT_URL as a tenant admin,
-- then give the app named in AZURE_MULTI_TENANT_APP_NAME the role "Storage Blob Data Reader"
-- on the container.
CREATE STORAGE INTEGRATION IF NOT EXISTS SNOWTAP_BLOB
  TYPE = EXTERNAL_STAGE
  STORAGE_PROVIDER = 'AZURE'
  ENABLED = TRUE
  AZURE_TENANT_ID = '<azure-tenant-id>'
  STORAGE_ALLOWED_LOCATIONS = ('azure://<account>.blob.core.windows.net/<container>/');

-- Auto-ingest: Event Grid (BlobCreated) -> storage queue -> this integration -> the pipe.
-- Consent: DESC NOTIFICATION INTEGRATION SNOWTAP_EVENTS; AZURE_CONSENT_URL as above, then the
-- role "Storage Queue Data Contributor" on the queue.
CREATE NOTIFICATION INTEGRATION IF NOT EXISTS SNOWTAP_EVENTS
  ENABLED = TRUE
  TYPE = QUEUE
  NOTIFICATION_PROVIDER = AZURE_STORAGE_QUEUE
  AZURE_STORAGE_QUEUE_PRIMARY_URI = 'https://<account>.queue.core.windows.net/<queue>'
  AZURE_TENANT_ID = '<azure-tenant-id>';

-- Snowpipe error notifications (the pipe's ERROR_INTEGRATION): a file with rejected rows or a
-- file that failed is pushed to an Event Grid topic instead of only sitting in COPY_HISTORY.
-- Consent: DESC NOTIFICATION INTEGRATION SNOWTAP_ERRORS; AZURE_CONSENT_URL, then the role
-- "EventGrid Data Sender" on the topic.
CREATE NOTIFICATION INTEGRATION IF NOT EXISTS SNOWTAP_ERRORS
  ENABLED = TRUE
  TYPE = QUEUE
  NOTIFICATION_PROVIDER = AZURE_EVENT_GRID
  DIRECTION = OUTBOUND
  AZURE_EVENT_GRID_TOPIC_ENDPOINT = '<event-grid-topic-endpoint>'
  AZURE_TENANT_ID = '<azure-tenant-id>';

GRANT USAGE ON INTEGRATION SNOWTAP_BLOB TO ROLE SNOWTAP_LOADER;
GRANT USAGE ON INTEGRATION SNOWTAP_EVENTS TO ROLE SNOWTAP_LOADER;
GRANT USAGE ON INTEGRATION SNOWTAP_ERRORS TO ROLE SNOWTAP_LOADER;

-- Where the schema objects live, and who may create and read them.
GRANT USAGE ON DATABASE <database> TO ROLE SNOWTAP_LOADER;
GRANT USAGE ON DATABASE <database> TO ROLE SNOWTAP_READER;
GRANT USAGE ON SCHEMA <database>.<schema> TO ROLE SNOWTAP_READER;
GRANT USAGE, CREATE TABLE, CREATE VIEW, CREATE FILE FORMAT, CREATE STAGE, CREATE PIPE
  ON SCHEMA <database>.<schema> TO ROLE SNOWTAP_LOADER;
-- A warehouse for the monitoring queries and the readers (Snowpipe itself is serverless).
GRANT USAGE ON WAREHOUSE <warehouse> TO ROLE SNOWTAP_READER;
