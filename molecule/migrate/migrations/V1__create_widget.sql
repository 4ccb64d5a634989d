-- Fixture for the migrate scenario: a versioned migration that creates a table.
CREATE TABLE widget (
    id serial PRIMARY KEY,
    name text NOT NULL UNIQUE
);
