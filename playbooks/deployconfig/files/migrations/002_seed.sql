INSERT INTO greeting (text) VALUES ('hello');
