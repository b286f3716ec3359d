-- DuckDB forms of the sketch functions of sql/schema/06-aggregates.sql (DuckDB runs no
-- JavaScript UDFs): the same names and results as SQL macros, so that the SNOWTAP_AGGREGATES
-- view runs unchanged in DuckDB (test/unit/aggregates-sql.test.ts), and for local analysis of
-- aggregate files with DuckDB. A sketch is 4096 characters, register i is ASCII(char) - 48.

CREATE OR REPLACE MACRO SNOWTAP_HLL_MERGE(sketches) AS (
  CASE
    WHEN len(list_filter(sketches, s -> s IS NOT NULL)) = 0 THEN NULL
    ELSE array_to_string(
      list_transform(
        range(4096),
        i -> chr(list_max(list_transform(list_filter(sketches, s -> s IS NOT NULL), s -> ascii(substr(s, i + 1, 1)))))
      ),
      ''
    )
  END
);

CREATE OR REPLACE MACRO SNOWTAP_HLL_ZEROS(sketch) AS (
  len(list_filter(range(4096), i -> substr(sketch, i + 1, 1) = '0'))
);

CREATE OR REPLACE MACRO SNOWTAP_HLL_RAW(sketch) AS (
  (0.7213 / (1 + 1.079 / 4096)) * 4096 * 4096
    / list_sum(list_transform(range(4096), i -> pow(2.0, -(ascii(substr(sketch, i + 1, 1)) - 48))))
);

CREATE OR REPLACE MACRO SNOWTAP_HLL_ESTIMATE(sketch) AS (
  CASE
    WHEN sketch IS NULL THEN NULL
    WHEN SNOWTAP_HLL_RAW(sketch) <= 2.5 * 4096 AND SNOWTAP_HLL_ZEROS(sketch) > 0
      THEN 4096 * ln(4096 / SNOWTAP_HLL_ZEROS(sketch))
    ELSE SNOWTAP_HLL_RAW(sketch)
  END
);
