-- 0001: the records of controller/store/schema.ts (the lowdb document), one table a collection.
--
-- Mapping and choices (the places where this is a reading of schema.ts, not a copy):
-- * Times: the ISO strings (created_at, ...) and the epoch-ms numbers (revoked_tokens.expires_at, a job's
--   lease expiry and not_before, a worker token's expiry) are all timestamptz here; the store converts at
--   its boundary. Unsure: epoch ms as bigint would round-trip the lowdb values without a conversion.
-- * A job's lease ({worker_id, lease_id, expires_at} or null) is three columns, all null or all set.
-- * A worker's token ({jti, expires_at}, null or absent) is two columns, both null or both set.
-- * tags, filters, operations and formats of a worker are text[]; operations/formats stay null for a worker
--   that did not report them (absent in schema.ts). A workload's operation chain is jsonb (null for a course
--   filter's workload).
-- * Foreign keys only where schema.ts always holds a live reference: an image's and a job's workload, a
--   job's image; DEFERRABLE INITIALLY DEFERRED, so that the order of writes inside a transaction does not
--   matter. Unsure: images.source_image_id, images.job_id and jobs.filtered_image_id have none, as lowdb
--   never checks them; a workload's owner is not tied to users either.
-- * Workload names are unique across the store (controller/workloads.ts refuses a taken name); worker
--   names are not (a name can have several records, at most one of them not left).
-- * Not here yet: worker_minutes, worker_hours and worker_activity (the workers' history and counters).

CREATE TABLE users (
  username text PRIMARY KEY,
  password_hash text NOT NULL,
  created_at timestamptz NOT NULL
);

CREATE TABLE revoked_tokens (
  jti text PRIMARY KEY,
  expires_at timestamptz NOT NULL
);
-- the prune deletes the ones whose expiry has passed
CREATE INDEX revoked_tokens_expires_at ON revoked_tokens (expires_at);

CREATE TABLE workers (
  id text PRIMARY KEY,
  name text NOT NULL,
  instance_id text NOT NULL,
  tags text[] NOT NULL DEFAULT '{}',
  rpc_address text NOT NULL,
  slots integer NOT NULL CHECK (slots >= 0),
  engine text NOT NULL CHECK (engine IN ('sharp', 'jimp')),
  filters text[] NOT NULL DEFAULT '{}',
  operations text[],
  formats text[],
  registered_at timestamptz NOT NULL,
  left_at timestamptz,
  token_jti text,
  token_expires_at timestamptz,
  CHECK ((token_jti IS NULL) = (token_expires_at IS NULL))
);
CREATE INDEX workers_name ON workers (name);

CREATE TABLE workloads (
  id text PRIMARY KEY,
  owner text NOT NULL,
  name text NOT NULL UNIQUE,
  filter text,
  operations jsonb,
  tags text[] NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL,
  cancelled_at timestamptz
);
CREATE INDEX workloads_owner ON workloads (owner, created_at);

CREATE TABLE images (
  id text PRIMARY KEY,
  workload_id text NOT NULL REFERENCES workloads (id) DEFERRABLE INITIALLY DEFERRED,
  owner text NOT NULL,
  type text NOT NULL CHECK (type IN ('original', 'filtered')),
  source_image_id text,
  job_id text,
  file text NOT NULL,
  mime text NOT NULL,
  bytes bigint NOT NULL CHECK (bytes >= 0),
  width integer NOT NULL,
  height integer NOT NULL,
  created_at timestamptz NOT NULL,
  -- upload order across the store
  seq bigint NOT NULL UNIQUE
);
-- a workload's originals in upload order, and its results
CREATE INDEX images_workload ON images (workload_id, type, seq);
CREATE INDEX images_source ON images (source_image_id) WHERE source_image_id IS NOT NULL;

CREATE TABLE jobs (
  id text PRIMARY KEY,
  workload_id text NOT NULL REFERENCES workloads (id) DEFERRABLE INITIALLY DEFERRED,
  image_id text NOT NULL REFERENCES images (id) DEFERRABLE INITIALLY DEFERRED,
  state text NOT NULL CHECK (state IN ('queued', 'assigned', 'running', 'done', 'failed', 'cancelled')),
  attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  lease_id text UNIQUE,
  lease_worker_id text,
  lease_expires_at timestamptz,
  -- retry backoff: not claimed before
  not_before timestamptz NOT NULL,
  error text,
  filtered_image_id text,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  started_at timestamptz,
  finished_at timestamptz,
  CHECK (
    (lease_id IS NULL AND lease_worker_id IS NULL AND lease_expires_at IS NULL)
    OR (lease_id IS NOT NULL AND lease_worker_id IS NOT NULL AND lease_expires_at IS NOT NULL)
  )
);
-- claims: the queued jobs that are due, oldest first (SELECT ... FOR UPDATE SKIP LOCKED)
CREATE INDEX jobs_queued ON jobs (not_before, created_at) WHERE state = 'queued';
-- the lease sweep: held leases by expiry; a worker's jobs
CREATE INDEX jobs_lease_expires_at ON jobs (lease_expires_at) WHERE lease_id IS NOT NULL;
CREATE INDEX jobs_lease_worker ON jobs (lease_worker_id) WHERE lease_worker_id IS NOT NULL;
-- a workload's jobs by state (its progress, cancelling it)
CREATE INDEX jobs_workload_state ON jobs (workload_id, state);
CREATE INDEX jobs_image ON jobs (image_id);
