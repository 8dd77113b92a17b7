-- The results table of test/bench/run: the median of each variant's runs,
-- its ratio to the baseline of the same measurement, and PASS or MISS for
-- each goal.  Every ratio is variant / baseline.  For times (s, µs) lower is
-- better, and for rates (TPS, rows/s) higher is better.
\set ON_ERROR_STOP on
\pset footer off
\pset null ''

WITH stats AS (
    SELECT v.variant_id, v.section, v.measurement, v.variant, v.role, v.unit,
           v.goal_kind, v.goal_value,
           v.unit IN ('TPS', 'rows/s') AS higher_is_better,
           count(r.value) AS runs,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY r.value) AS median,
           min(r.value) AS low,
           max(r.value) AS high
      FROM bench_variant AS v
      LEFT JOIN bench_result AS r USING (variant_id)
     GROUP BY v.variant_id
),
compared AS (
    SELECT s.*,
           s.median / NULLIF(b.median, 0) AS ratio,
           h.median AS hipaa_guard_median
      FROM stats AS s
      LEFT JOIN stats AS b
             ON b.section = s.section AND b.measurement = s.measurement AND b.role = 'baseline'
      LEFT JOIN stats AS h
             ON h.section = s.section AND h.measurement = s.measurement AND h.role = 'hipaa_guard'
)
SELECT section AS "#",
       measurement,
       variant,
       runs,
       CASE WHEN unit IN ('TPS', 'rows/s') THEN to_char(median, 'FM999999990')
            ELSE to_char(median, 'FM999990.000') END AS median,
       CASE WHEN runs < 2 THEN ''
            WHEN unit IN ('TPS', 'rows/s') THEN to_char(low, 'FM999999990') || '-' || to_char(high, 'FM999999990')
            ELSE to_char(low, 'FM999990.000') || '-' || to_char(high, 'FM999990.000') END AS "min-max",
       unit,
       to_char(ratio, 'FM99990.00') AS ratio,
       CASE goal_kind
            WHEN 'max_ratio' THEN 'ratio <= ' || goal_value
            WHEN 'min_ratio' THEN 'ratio >= ' || goal_value
            WHEN 'hipaa_guard_faster' THEN 'hipaa_guard faster'
       END AS goal,
       CASE WHEN goal_kind IS NULL THEN NULL
            WHEN median IS NULL OR (goal_kind <> 'hipaa_guard_faster' AND ratio IS NULL)
                 OR (goal_kind = 'hipaa_guard_faster' AND hipaa_guard_median IS NULL) THEN 'NO DATA'
            WHEN goal_kind = 'max_ratio' THEN CASE WHEN ratio <= goal_value THEN 'PASS' ELSE 'MISS' END
            WHEN goal_kind = 'min_ratio' THEN CASE WHEN ratio >= goal_value THEN 'PASS' ELSE 'MISS' END
            WHEN higher_is_better THEN CASE WHEN hipaa_guard_median > median THEN 'PASS' ELSE 'MISS' END
            ELSE CASE WHEN hipaa_guard_median < median THEN 'PASS' ELSE 'MISS' END
       END AS result
  FROM compared
 ORDER BY variant_id;
