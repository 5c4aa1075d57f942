-- 0005: the length a client declared for an upload slot: its presigned PUT takes exactly that many bytes, and the
-- confirm refuses an object of any other size. Null for slots given out before.

ALTER TABLE upload_slots ADD COLUMN bytes bigint CHECK (bytes >= 0);
