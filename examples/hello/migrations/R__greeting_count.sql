CREATE OR REPLACE VIEW greeting_count AS SELECT count(*) AS n FROM greeting;
