-- The greetings the app could serve.
CREATE TABLE greeting (
    id serial PRIMARY KEY,
    text text NOT NULL
);
