-- DuckDB forms of the sketch functions of sql/schema/06-aggregates.sql (DuckDB runs no
-- JavaScript UDFs): the same names and results as SQL macros, so that the SNOWTAP_AGGREGATES
-- view runs unchanged in DuckDB (test/unit/aggregates.test.ts), and for local analysis of
-- aggregate files with DuckDB. A sketch is 4096 characters, register i is ASCII(char) - 48.
-- OBJECT_CONSTRUCT is Snowflake's, for the two pairs the view uses (as JSON here).
-- Macros are expanded in place: an argument is bound once by passing it through a one-element
-- list and a lambda ([x] -> ...), else nested calls would re-evaluate it for every register.

CREATE OR REPLACE MACRO SNOWTAP_HLL_MERGE(sketches) AS (
  list_transform(
    [list_filter(sketches, s -> s IS NOT NULL)],
    ss -> CASE
      WHEN len(ss) = 0 THEN NULL
      ELSE array_to_string(
        list_transform(range(4096), i -> chr(list_max(list_transform(ss, s -> ascii(substr(s, i + 1, 1)))))),
        ''
      )
    END
  )[1]
);

CREATE OR REPLACE MACRO SNOWTAP_HLL_REGISTERS_ESTIMATE(r) AS (
  list_transform(
    [[(0.7213 / (1 + 1.079 / 4096)) * 4096 * 4096 / list_sum(list_transform(r, x -> pow(2.0, -x))),
      len(list_filter(r, x -> x = 0))]],
    v -> CASE WHEN v[1] <= 2.5 * 4096 AND v[2] > 0 THEN 4096 * ln(4096 / v[2]) ELSE v[1] END
  )[1]
);

CREATE OR REPLACE MACRO SNOWTAP_HLL_ESTIMATE(sketch) AS (
  list_transform(
    [sketch],
    sk -> CASE
      WHEN sk IS NULL THEN NULL
      ELSE SNOWTAP_HLL_REGISTERS_ESTIMATE(list_transform(range(4096), i -> ascii(substr(sk, i + 1, 1)) - 48))
    END
  )[1]
);

CREATE OR REPLACE MACRO OBJECT_CONSTRUCT(k1, v1, k2, v2) AS json_object(k1::VARCHAR, v1, k2::VARCHAR, v2);

-- SNOWTAP_TOPK_MERGE(parts): parts is a list of JSON objects {"top": summary, "bound": n} (the
-- summary as JSON text, a raw top_qnames, or as an array, the view's own top_qnames); the same
-- arithmetic and order as the JavaScript UDF, as JSON text.
CREATE OR REPLACE MACRO SNOWTAP_TOPK_MERGE(parts) AS (
  WITH p AS (
    SELECT
      coalesce((part->>'bound')::BIGINT, 0) AS b,
      CASE WHEN json_type(part->'top') = 'VARCHAR' THEN (part->>'top')::JSON ELSE part->'top' END AS top
    FROM (SELECT unnest(parts) AS part) AS ps
    WHERE part IS NOT NULL
  ),
  t AS (SELECT coalesce(sum(b), 0)::BIGINT AS total FROM p),
  e AS (
    SELECT x->>0 AS name, (x->>1)::BIGINT - b AS dc, (x->>2)::BIGINT - b AS de
    FROM p, unnest(from_json(coalesce(top, '[]'), '["JSON"]')) AS u(x)
  ),
  g AS (
    SELECT name, (sum(dc) + any_value(total))::BIGINT AS c, (sum(de) + any_value(total))::BIGINT AS e
    FROM e, t
    GROUP BY name
  ),
  r AS (SELECT *, row_number() OVER (ORDER BY c DESC, name) AS rk FROM g)
  SELECT json_object(
    'top', coalesce((SELECT list(json_array(name, c, e) ORDER BY rk) FROM r WHERE rk <= 64), [])::JSON,
    'bound', greatest((SELECT total FROM t), coalesce((SELECT c FROM r WHERE rk = 65), 0))
  )
);
