-- 0002: the workers' history and counters of controller/store/schema.ts (worker_minutes, worker_hours,
-- worker_activity), one table a collection, as 0001 does for the others.
--
-- Mapping and choices:
-- * worker_minutes and worker_hours are keyed `<worker id>/<start>` in schema.ts: that string is the primary
--   key `key`, and worker_id and start are columns of their own too (start, epoch ms there, is timestamptz
--   here, as every time of 0001). A minute's samples and an hour's points are one jsonb array each: they are
--   written once and read whole, never queried inside.
-- * worker_activity is keyed by its worker's id. Its counters are columns; the bytes and job counts are
--   bigint, the registrations and deaths integer. The last few registration times, the deaths ({at, back_at})
--   and the last reported resources are jsonb (resources null before the first heartbeat).
-- * No foreign key to workers: the history outlives a worker's record, and lowdb never checks it.

CREATE TABLE worker_minutes (
  key text PRIMARY KEY,
  worker_id text NOT NULL,
  start timestamptz NOT NULL,
  samples jsonb NOT NULL
);
-- a worker's timeline; the fold into hours and the prune, by start
CREATE INDEX worker_minutes_worker_start ON worker_minutes (worker_id, start);

CREATE TABLE worker_hours (
  key text PRIMARY KEY,
  worker_id text NOT NULL,
  start timestamptz NOT NULL,
  points jsonb NOT NULL
);
CREATE INDEX worker_hours_worker_start ON worker_hours (worker_id, start);

CREATE TABLE worker_activity (
  worker_id text PRIMARY KEY,
  registrations integer NOT NULL DEFAULT 0 CHECK (registrations >= 0),
  registered jsonb NOT NULL DEFAULT '[]',
  left_at timestamptz,
  deaths integer NOT NULL DEFAULT 0 CHECK (deaths >= 0),
  died jsonb NOT NULL DEFAULT '[]',
  jobs_done bigint NOT NULL DEFAULT 0 CHECK (jobs_done >= 0),
  jobs_failed bigint NOT NULL DEFAULT 0 CHECK (jobs_failed >= 0),
  jobs_requeued bigint NOT NULL DEFAULT 0 CHECK (jobs_requeued >= 0),
  bytes_in bigint NOT NULL DEFAULT 0 CHECK (bytes_in >= 0),
  bytes_out bigint NOT NULL DEFAULT 0 CHECK (bytes_out >= 0),
  -- its last heartbeat, and what it reported then
  last_seen timestamptz,
  resources jsonb
);
