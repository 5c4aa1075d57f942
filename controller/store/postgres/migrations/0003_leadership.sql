-- 0003: what servers sharing the database share besides the records: settings (the token signing key), and
-- the one row that says which server leads.
--
-- * settings: one value a name. `jwt-secret` is the key tokens are signed with (hex), created by the first
--   server to start, so that a token issued by one server is valid on every other.
-- * leadership: exactly one row (id = 1). The leader holds a session-level advisory lock (see leadership.ts)
--   and, on taking over, increments `epoch` and writes where it can be reached. Every commit of the leader
--   checks the epoch it leads in (SELECT ... FOR SHARE): a server that lost the lead can no longer write.

CREATE TABLE settings (
  name text PRIMARY KEY,
  value text NOT NULL
);

CREATE TABLE leadership (
  id integer PRIMARY KEY CHECK (id = 1),
  epoch bigint NOT NULL CHECK (epoch >= 0),
  server_id text,
  api_url text,
  controller_host text,
  controller_port integer CHECK (controller_port BETWEEN 1 AND 65535),
  since timestamptz
);
INSERT INTO leadership (id, epoch) VALUES (1, 0);
