-- 0004: upload slots not yet confirmed (POST /uploads), kept with the records so that a server that leads after
-- another honours the slots it gave out. One row a slot, gone once it is confirmed or has expired.

CREATE TABLE upload_slots (
  id text PRIMARY KEY,
  owner text NOT NULL,
  workload_id text NOT NULL,
  key text NOT NULL,
  mime text NOT NULL CHECK (mime IN ('image/png', 'image/jpeg')),
  expires_at timestamptz NOT NULL
);
-- the expiry sweep
CREATE INDEX upload_slots_expires_at ON upload_slots (expires_at);
