-- Fixture for the migrate scenario: a second versioned migration, applied after V1.
INSERT INTO widget (name) VALUES ('sprocket'), ('gear');
