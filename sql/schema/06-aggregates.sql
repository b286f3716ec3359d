-- Snowtap -> Snowflake, hourly aggregates (issue 9 step 3; README "Hourly aggregates"): the raw
-- table the aggregate files load into, their pipe, the merging view, and the sketch functions.
-- Run after 01-05 (the stage, the file format and the integrations are the rows' ones).
--
-- Files (enricher/aggregates/service.ts), below the stage URL:
--   [<prefix>/]aggregates/YYYY/MM/DD/HH/snowtap_agg-<enricher_id>-<epoch>-<YYYYMMDDTHH>.csv[.gz|.zst]
-- one per enricher and emitted hour; `snowtap_agg-` never matches the rows pipe's `snowtap-`,
-- and this pipe's PATTERN never matches a row chunk (test/unit/snowflake-sql.test.ts checks both).
--
-- A row: one hour x tenant x policy network (CIDR; NULL = no network matched) of one emission
-- of one enricher. Counts are sums of sample_rate (estimated = TRUE when any record was
-- sampled). resent_records bounds the over-count: the row's counts are >= the truth and at
-- most resent_records above it (batches re-sent after a lost ack count on both pods).
-- clients_hll: a HyperLogLog (p = 12, 4096 registers, one character '0' + rank each) of a
-- keyed hash (HMAC-SHA-256 under --aggregates-key) of the client addresses: mergeable by
-- register-wise maximum, relative standard error 1.63 % (clients_rse), no membership test
-- without the key. Sketches merge only within one clients_key_id. top_qnames: a Space-Saving
-- summary as JSON [[qname, count, error], ...] (64 entries at most): a listed name's true count
-- lies in [count - error, count]; an unlisted name's is <= top_qnames_bound.

CREATE TRANSIENT TABLE IF NOT EXISTS SNOWTAP_AGGREGATES_RAW (
  emission_id        VARCHAR,
  hour_start         TIMESTAMP_NTZ(9),
  tenant             VARCHAR,
  network            VARCHAR,
  enricher_id        VARCHAR,
  queries            NUMBER(38, 0),
  responses          NUMBER(38, 0),
  resent_records     NUMBER(38, 0),
  estimated          BOOLEAN,
  rcode_noerror      NUMBER(38, 0),
  rcode_formerr      NUMBER(38, 0),
  rcode_servfail     NUMBER(38, 0),
  rcode_nxdomain     NUMBER(38, 0),
  rcode_notimp       NUMBER(38, 0),
  rcode_refused      NUMBER(38, 0),
  rcode_yxdomain     NUMBER(38, 0),
  rcode_yxrrset      NUMBER(38, 0),
  rcode_nxrrset      NUMBER(38, 0),
  rcode_notauth      NUMBER(38, 0),
  rcode_notzone      NUMBER(38, 0),
  rcode_badvers      NUMBER(38, 0),
  rcode_badcookie    NUMBER(38, 0),
  rcode_other        NUMBER(38, 0),
  qtype_a            NUMBER(38, 0),
  qtype_aaaa         NUMBER(38, 0),
  qtype_cname        NUMBER(38, 0),
  qtype_https        NUMBER(38, 0),
  qtype_svcb         NUMBER(38, 0),
  qtype_mx           NUMBER(38, 0),
  qtype_txt          NUMBER(38, 0),
  qtype_ptr          NUMBER(38, 0),
  qtype_ns           NUMBER(38, 0),
  qtype_soa          NUMBER(38, 0),
  qtype_srv          NUMBER(38, 0),
  qtype_ds           NUMBER(38, 0),
  qtype_dnskey       NUMBER(38, 0),
  qtype_caa          NUMBER(38, 0),
  qtype_naptr        NUMBER(38, 0),
  qtype_any          NUMBER(38, 0),
  qtype_axfr         NUMBER(38, 0),
  qtype_ixfr         NUMBER(38, 0),
  qtype_other        NUMBER(38, 0),
  clients_key_id     VARCHAR,
  clients_hll        VARCHAR,
  clients_estimate   FLOAT,
  clients_rse        FLOAT,
  top_qnames         VARCHAR,
  top_qnames_bound   NUMBER(38, 0),
  top_qnames_skipped NUMBER(38, 0),
  -- Load metadata, as in DNS_QUERIES_RAW.
  source_file        VARCHAR,
  loaded_at          TIMESTAMP_LTZ(9)
)
  DATA_RETENTION_TIME_IN_DAYS = 1
  COMMENT = 'Snowtap hourly aggregates as loaded (one row per emission and group); query SNOWTAP_AGGREGATES';

CREATE PIPE IF NOT EXISTS SNOWTAP_AGGREGATES_PIPE
  AUTO_INGEST = TRUE
  INTEGRATION = 'SNOWTAP_EVENTS'
  ERROR_INTEGRATION = SNOWTAP_ERRORS
  AS
  COPY INTO SNOWTAP_AGGREGATES_RAW (
    emission_id, hour_start, tenant, network, enricher_id, queries, responses, resent_records,
    estimated, rcode_noerror, rcode_formerr, rcode_servfail, rcode_nxdomain, rcode_notimp,
    rcode_refused, rcode_yxdomain, rcode_yxrrset, rcode_nxrrset, rcode_notauth, rcode_notzone,
    rcode_badvers, rcode_badcookie, rcode_other, qtype_a, qtype_aaaa, qtype_cname, qtype_https,
    qtype_svcb, qtype_mx, qtype_txt, qtype_ptr, qtype_ns, qtype_soa, qtype_srv, qtype_ds,
    qtype_dnskey, qtype_caa, qtype_naptr, qtype_any, qtype_axfr, qtype_ixfr, qtype_other,
    clients_key_id, clients_hll, clients_estimate, clients_rse, top_qnames, top_qnames_bound,
    top_qnames_skipped, source_file, loaded_at
  )
  FROM (
    SELECT
    $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21,
    $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, $33, $34, $35, $36, $37, $38, $39, $40,
    $41, $42, $43, $44, $45, $46, $47, $48, $49, METADATA$FILENAME, METADATA$START_SCAN_TIME
    FROM @SNOWTAP_STAGE
  )
  PATTERN = '^([^/]+/)*aggregates/[0-9]{4}/[0-9]{2}/[0-9]{2}/[0-9]{2}/snowtap_agg-[^/]+[.]csv([.]gz|[.]zst)?$'
  FILE_FORMAT = (FORMAT_NAME = 'SNOWTAP_CSV')
  ON_ERROR = CONTINUE;

-- Sketch functions. The bodies are plain JavaScript (ES5) so that the tests run the same text
-- in Node.js; DuckDB gets the same three functions as SQL macros (sql/duckdb/aggregates.sql).
-- SNOWTAP_HLL_MERGE: register-wise maximum of the sketches (NULLs ignored; NULL when none).
CREATE OR REPLACE FUNCTION SNOWTAP_HLL_MERGE(SKETCHES ARRAY)
  RETURNS VARCHAR
  LANGUAGE JAVASCRIPT
  IMMUTABLE
AS $$
var m = 4096;
var out = null;
for (var k = 0; k < SKETCHES.length; k++) {
  var s = SKETCHES[k];
  if (s === null || s === undefined) continue;
  if (s.length !== m) throw new Error('SNOWTAP_HLL_MERGE: a sketch has ' + s.length + ' registers, not ' + m);
  if (out === null) {
    out = [];
    for (var i = 0; i < m; i++) out.push(s.charCodeAt(i));
  } else {
    for (var j = 0; j < m; j++) {
      var c = s.charCodeAt(j);
      if (c > out[j]) out[j] = c;
    }
  }
}
if (out === null) return null;
return String.fromCharCode.apply(null, out);
$$;

-- SNOWTAP_HLL_ESTIMATE: the HyperLogLog estimate with linear counting below 2.5 m.
CREATE OR REPLACE FUNCTION SNOWTAP_HLL_ESTIMATE(SKETCH VARCHAR)
  RETURNS FLOAT
  LANGUAGE JAVASCRIPT
  IMMUTABLE
AS $$
if (SKETCH === null || SKETCH === undefined) return null;
var m = 4096;
if (SKETCH.length !== m) throw new Error('SNOWTAP_HLL_ESTIMATE: the sketch has ' + SKETCH.length + ' registers, not ' + m);
var sum = 0;
var zeros = 0;
for (var i = 0; i < m; i++) {
  var r = SKETCH.charCodeAt(i) - 48;
  sum += Math.pow(2, -r);
  if (r === 0) zeros++;
}
var raw = (0.7213 / (1 + 1.079 / m)) * m * m / sum;
return raw <= 2.5 * m && zeros > 0 ? m * Math.log(m / zeros) : raw;
$$;

-- SNOWTAP_TOPK_MERGE: merges Space-Saving summaries, across pods and hours. Each element of
-- PARTS is an object {"top": <summary>, "bound": <its bound>}, where the summary is
-- top_qnames (JSON text) or the "top" array of an earlier merge; so a raw row is passed as
--   OBJECT_CONSTRUCT('top', top_qnames, 'bound', top_qnames_bound)
-- and the view's own top_qnames column (already of that shape) merges further, e.g. a day:
--   SELECT tenant, SNOWTAP_TOPK_MERGE(ARRAY_AGG(top_qnames)) FROM SNOWTAP_AGGREGATES
--   WHERE hour_start >= '2026-01-01' AND hour_start < '2026-01-02' GROUP BY tenant;
-- (one object per element keeps a summary and its bound paired; two ARRAY_AGGs would not be).
-- A summary that does not list a name contributes its bound to both the name's count and its
-- error, so with B = the sum of the bounds: count(n) = B + sum over listing summaries of
-- (count - bound), error likewise; the true total lies in [count - error, count]. A name in no
-- result has a total <= "bound" (B, or the 65th count if larger). Returns
-- {"top": [[qname, count, error], ...] (64, by count then name), "bound": n}. Run it on
-- deduplicated rows (the view's): a file loaded twice would count twice.
CREATE OR REPLACE FUNCTION SNOWTAP_TOPK_MERGE(PARTS ARRAY)
  RETURNS VARIANT
  LANGUAGE JAVASCRIPT
  IMMUTABLE
AS $$
var total = 0;
var lists = [];
for (var k = 0; k < PARTS.length; k++) {
  var p = PARTS[k];
  if (p === null || p === undefined) continue;
  var top = p.top === null || p.top === undefined ? [] : typeof p.top === 'string' ? JSON.parse(p.top) : p.top;
  var b = Number(p.bound || 0);
  total += b;
  lists.push({ top: top, b: b });
}
var acc = Object.create(null);
var names = [];
for (var j = 0; j < lists.length; j++) {
  for (var i = 0; i < lists[j].top.length; i++) {
    var t = lists[j].top[i];
    if (acc[t[0]] === undefined) {
      acc[t[0]] = [0, 0];
      names.push(t[0]);
    }
    acc[t[0]][0] += t[1] - lists[j].b;
    acc[t[0]][1] += t[2] - lists[j].b;
  }
}
var out = [];
for (var q = 0; q < names.length; q++) out.push([names[q], total + acc[names[q]][0], total + acc[names[q]][1]]);
out.sort(function (x, y) { return y[1] - x[1] || (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0); });
var cut = out.length > 64 ? out[64][1] : 0;
return { top: out.slice(0, 64), bound: Math.max(total, cut) };
$$;

-- SNOWTAP_AGGREGATES: one row per hour x tenant x network (x sketch key). A file loaded twice
-- (a re-published emission after a crash, a REFRESH) has rows with equal (emission_id,
-- hour_start, tenant, network): one copy is kept. Rows of different pods and emissions (late
-- records published after their hour) are summed, sketches merged: clients_hll by register,
-- top_qnames by SNOWTAP_TOPK_MERGE into {"top": [[qname, count, error], ...], "bound": n}.
CREATE OR REPLACE VIEW SNOWTAP_AGGREGATES COPY GRANTS AS
WITH once AS (
  SELECT *
  FROM SNOWTAP_AGGREGATES_RAW
  QUALIFY ROW_NUMBER() OVER (
    PARTITION BY emission_id, hour_start, tenant, network
    ORDER BY loaded_at, source_file
  ) = 1
)
SELECT
  hour_start,
  tenant,
  network,
  clients_key_id,
  COUNT(DISTINCT enricher_id) AS enrichers,
  SUM(queries) AS queries,
  SUM(responses) AS responses,
  SUM(resent_records) AS resent_records,
  SUM(rcode_noerror) AS rcode_noerror,
  SUM(rcode_formerr) AS rcode_formerr,
  SUM(rcode_servfail) AS rcode_servfail,
  SUM(rcode_nxdomain) AS rcode_nxdomain,
  SUM(rcode_notimp) AS rcode_notimp,
  SUM(rcode_refused) AS rcode_refused,
  SUM(rcode_yxdomain) AS rcode_yxdomain,
  SUM(rcode_yxrrset) AS rcode_yxrrset,
  SUM(rcode_nxrrset) AS rcode_nxrrset,
  SUM(rcode_notauth) AS rcode_notauth,
  SUM(rcode_notzone) AS rcode_notzone,
  SUM(rcode_badvers) AS rcode_badvers,
  SUM(rcode_badcookie) AS rcode_badcookie,
  SUM(rcode_other) AS rcode_other,
  SUM(qtype_a) AS qtype_a,
  SUM(qtype_aaaa) AS qtype_aaaa,
  SUM(qtype_cname) AS qtype_cname,
  SUM(qtype_https) AS qtype_https,
  SUM(qtype_svcb) AS qtype_svcb,
  SUM(qtype_mx) AS qtype_mx,
  SUM(qtype_txt) AS qtype_txt,
  SUM(qtype_ptr) AS qtype_ptr,
  SUM(qtype_ns) AS qtype_ns,
  SUM(qtype_soa) AS qtype_soa,
  SUM(qtype_srv) AS qtype_srv,
  SUM(qtype_ds) AS qtype_ds,
  SUM(qtype_dnskey) AS qtype_dnskey,
  SUM(qtype_caa) AS qtype_caa,
  SUM(qtype_naptr) AS qtype_naptr,
  SUM(qtype_any) AS qtype_any,
  SUM(qtype_axfr) AS qtype_axfr,
  SUM(qtype_ixfr) AS qtype_ixfr,
  SUM(qtype_other) AS qtype_other,
  COUNT_IF(estimated) > 0 AS estimated,
  SNOWTAP_HLL_ESTIMATE(SNOWTAP_HLL_MERGE(ARRAY_AGG(clients_hll))) AS clients_estimate,
  SNOWTAP_HLL_MERGE(ARRAY_AGG(clients_hll)) AS clients_hll,
  SNOWTAP_TOPK_MERGE(ARRAY_AGG(OBJECT_CONSTRUCT('top', top_qnames, 'bound', top_qnames_bound))) AS top_qnames
FROM once
GROUP BY hour_start, tenant, network, clients_key_id;

GRANT SELECT ON VIEW SNOWTAP_AGGREGATES TO ROLE SNOWTAP_READER;
GRANT USAGE ON FUNCTION SNOWTAP_HLL_MERGE(ARRAY) TO ROLE SNOWTAP_READER;
GRANT USAGE ON FUNCTION SNOWTAP_HLL_ESTIMATE(VARCHAR) TO ROLE SNOWTAP_READER;
GRANT USAGE ON FUNCTION SNOWTAP_TOPK_MERGE(ARRAY) TO ROLE SNOWTAP_READER;
