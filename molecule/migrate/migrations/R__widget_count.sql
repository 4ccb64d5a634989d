-- Fixture for the migrate scenario: a repeatable migration (re-applied only when this file changes).
CREATE OR REPLACE VIEW widget_count AS SELECT count(*) AS n FROM widget;
