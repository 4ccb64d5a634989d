CREATE TABLE IF NOT EXISTS greeting (id serial PRIMARY KEY, text text NOT NULL);
