-- Snowtap -> Snowflake, schema objects 5/5: readers query the view, never the raw table.
-- (SNOWTAP_LOADER owns everything in 01-04: it created them. The view runs with its owner's
-- rights, so SELECT on the view is all a reader needs.)

GRANT SELECT ON VIEW DNS_QUERIES TO ROLE SNOWTAP_READER;
