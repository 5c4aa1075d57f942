// Each collection's records through its table and back: written with jsonb_populate_recordset as the store
// writes them, read with SELECT *, decoded, and compared with what was written.
import { expect } from 'chai';
import pg from 'pg';
import { migrate } from '../../controller/store/postgres/migrate.js';
import { CODECS, type TableCodec } from '../../controller/store/postgres/rows.js';
import { COLLECTIONS, type Collection, type Data, emptyData } from '../../controller/store/schema.js';
import { skipWithoutPostgres, startPostgres, type TestPostgres } from '../helpers/postgres.js';

/** An epoch-ms moment with milliseconds, and times around it. */
const T0 = Date.UTC(2025, 2, 14, 9, 26, 53, 589);
const at = (offsetMs: number): number => T0 + offsetMs;
const iso = (offsetMs: number): string => new Date(at(offsetMs)).toISOString();
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const minuteStart = Math.floor(T0 / MINUTE) * MINUTE;
const hourStart = Math.floor(T0 / HOUR) * HOUR;

/** The optional (`?:`) fields of schema.ts: written null, they read back absent. */
const OPTIONAL: { [C in Collection]: readonly string[] } = {
  users: [],
  revoked_tokens: [],
  workers: ['operations', 'formats', 'token'],
  workloads: ['operations', 'cancelled_at'],
  images: [],
  jobs: [],
  worker_minutes: [],
  worker_hours: [],
  worker_activity: [],
  upload_slots: [],
};

function records(): Data {
  const data = emptyData();
  data.users = {
    alice: { username: 'alice', password_hash: 'scrypt$16384$c2FsdA$aGFzaA', created_at: iso(-5 * HOUR) },
    'bob.o-k_2': { username: 'bob.o-k_2', password_hash: 'scrypt$16384$b3RoZXI$bW9yZQ', created_at: iso(0) },
  };
  data.revoked_tokens = {
    'jti-1': { jti: 'jti-1', expires_at: at(HOUR) },
    'jti-2': { jti: 'jti-2', expires_at: at(-1) },
  };
  data.workers = {
    'w-full': {
      id: 'w-full',
      name: 'gpu-1',
      instance_id: 'inst-7f3a',
      tags: ['gpu', 'fast'],
      rpc_address: 'tcp://10.0.0.5:41001',
      slots: 4,
      engine: 'sharp',
      filters: ['grayscale', 'blur', 'sepia'],
      operations: ['grayscale', 'blur', 'resize', 'format'],
      formats: ['png', 'jpeg', 'webp'],
      registered_at: iso(-HOUR),
      left_at: null,
      token: { jti: 'wt-9', expires_at: at(12 * HOUR + 7) },
    },
    // from before operations, formats and the token were kept: all absent
    'w-old': {
      id: 'w-old',
      name: 'cpu-1',
      instance_id: 'inst-0001',
      tags: [],
      rpc_address: 'tcp://10.0.0.6:41001',
      slots: 1,
      engine: 'jimp',
      filters: [],
      registered_at: iso(-3 * HOUR),
      left_at: iso(-2 * HOUR + 123),
    },
    // a null token reads back absent; an empty operations list stays empty
    'w-null-token': {
      id: 'w-null-token',
      name: 'cpu-1',
      instance_id: 'inst-0002',
      tags: ['night'],
      rpc_address: 'tcp://10.0.0.6:41002',
      slots: 2,
      engine: 'jimp',
      filters: ['grayscale'],
      operations: [],
      formats: ['png'],
      registered_at: iso(-2 * HOUR),
      left_at: null,
      token: null,
    },
    // strings an array literal would have to quote
    'w-odd-strings': {
      id: 'w-odd-strings',
      name: 'odd',
      instance_id: 'inst-odd',
      tags: ['a,b', '{braces}', 'quo"te', 'back\\slash', 'NULL', '', ' spaced ', 'ünïcødé'],
      rpc_address: 'tcp://[::1]:41003',
      slots: 0,
      engine: 'sharp',
      filters: ['null'],
      registered_at: iso(1),
      left_at: null,
    },
  };
  data.workloads = {
    'wl-filter': {
      id: 'wl-filter',
      owner: 'alice',
      name: 'holiday',
      filter: 'grayscale',
      tags: [],
      created_at: iso(-HOUR),
    },
    'wl-ops': {
      id: 'wl-ops',
      owner: 'alice',
      name: 'thumbnails',
      filter: null,
      operations: [
        { op: 'auto_orient' },
        { op: 'resize', width: 800, height: null, fit: 'inside', enlarge: false },
        { op: 'blur', sigma: 1.5 },
        { op: 'crop', left: 0, top: 10, width: 640, height: 480 },
        { op: 'format', type: 'webp', quality: 80 },
      ],
      tags: ['gpu', 'batch'],
      created_at: iso(-30 * MINUTE),
      cancelled_at: null,
    },
    'wl-cancelled': {
      id: 'wl-cancelled',
      owner: 'bob.o-k_2',
      name: 'sepia run',
      filter: 'sepia',
      operations: null,
      tags: ['night'],
      created_at: iso(-20 * MINUTE),
      cancelled_at: iso(-MINUTE + 1),
    },
  };
  data.images = {
    'img-1': {
      id: 'img-1',
      workload_id: 'wl-ops',
      owner: 'alice',
      type: 'original',
      source_image_id: null,
      job_id: 'job-done',
      file: 'thumbnails/IMG_0001.jpg',
      mime: 'image/jpeg',
      bytes: 3_456_789_012,
      width: 6000,
      height: 4000,
      created_at: iso(-29 * MINUTE),
      seq: 1,
    },
    'img-2': {
      id: 'img-2',
      workload_id: 'wl-ops',
      owner: 'alice',
      type: 'filtered',
      source_image_id: 'img-1',
      job_id: null,
      file: 'thumbnails/IMG_0001.webp',
      mime: 'image/webp',
      bytes: 51_234,
      width: 800,
      height: 533,
      created_at: iso(-28 * MINUTE),
      seq: 2,
    },
    'img-3': {
      id: 'img-3',
      workload_id: 'wl-filter',
      owner: 'alice',
      type: 'original',
      source_image_id: null,
      job_id: 'job-queued',
      file: 'holiday/beach.png',
      mime: 'image/png',
      bytes: 0,
      width: 1,
      height: 1,
      created_at: iso(-HOUR + 5),
      seq: 9_007_199_254_740_991,
    },
  };
  data.jobs = {
    'job-queued': {
      id: 'job-queued',
      workload_id: 'wl-filter',
      image_id: 'img-3',
      state: 'queued',
      attempts: 0,
      lease: null,
      not_before: 0,
      error: null,
      filtered_image_id: null,
      created_at: iso(-HOUR + 6),
      updated_at: iso(-HOUR + 6),
      started_at: null,
      finished_at: null,
    },
    'job-running': {
      id: 'job-running',
      workload_id: 'wl-ops',
      image_id: 'img-1',
      state: 'running',
      attempts: 2,
      lease: { worker_id: 'w-full', lease_id: 'lease-abc', expires_at: at(30_001) },
      not_before: at(-10 * MINUTE + 999),
      error: 'worker w-old died',
      filtered_image_id: null,
      created_at: iso(-29 * MINUTE),
      updated_at: iso(-3),
      started_at: iso(-3),
      finished_at: null,
    },
    'job-done': {
      id: 'job-done',
      workload_id: 'wl-ops',
      image_id: 'img-1',
      state: 'done',
      attempts: 1,
      lease: null,
      not_before: 0,
      error: null,
      filtered_image_id: 'img-2',
      created_at: iso(-29 * MINUTE),
      updated_at: iso(-28 * MINUTE),
      started_at: iso(-28 * MINUTE - 2_345),
      finished_at: iso(-28 * MINUTE),
    },
  };
  const sample = (t: number, gpu: boolean) => ({
    t,
    cpu_load: 37.25,
    mem_used: 0.6180339887498949,
    ...(gpu ? { gpu_utilization: 91, gpu_memory_free_mb: 2047.5 } : {}),
  });
  data.worker_minutes = {
    [`w-full/${minuteStart}`]: {
      worker_id: 'w-full',
      start: minuteStart,
      samples: [sample(minuteStart + 1_234, true), sample(minuteStart + 31_234, true)],
    },
    [`w-old/${minuteStart - MINUTE}`]: {
      worker_id: 'w-old',
      start: minuteStart - MINUTE,
      samples: [sample(minuteStart - MINUTE + 17, false)],
    },
  };
  data.worker_hours = {
    [`w-full/${hourStart}`]: {
      worker_id: 'w-full',
      start: hourStart,
      points: [sample(hourStart, true), sample(hourStart + MINUTE, false), sample(hourStart + 2 * MINUTE, true)],
    },
    [`w-old/${hourStart - HOUR}`]: { worker_id: 'w-old', start: hourStart - HOUR, points: [] },
  };
  data.upload_slots = {
    'slot-1': {
      id: 'slot-1',
      owner: 'alice',
      workload_id: 'wl-1',
      key: 'photos/slot-1.jpg',
      mime: 'image/jpeg',
      bytes: 48_213,
      expires_at: at(15 * MINUTE + 7),
    },
    'slot-2': {
      id: 'slot-2',
      owner: 'bob',
      workload_id: 'wl-2',
      key: 'p/slot-2.png',
      mime: 'image/png',
      expires_at: at(1),
    },
  };
  data.worker_activity = {
    'w-new': {
      worker_id: 'w-new',
      registrations: 1,
      registered: [iso(0)],
      left_at: null,
      deaths: 0,
      died: [],
      jobs_done: 0,
      jobs_failed: 0,
      jobs_requeued: 0,
      bytes_in: 0,
      bytes_out: 0,
      last_seen: null,
      resources: null,
    },
    'w-full': {
      worker_id: 'w-full',
      registrations: 3,
      registered: [iso(-2 * HOUR), iso(-HOUR), iso(-7)],
      left_at: iso(-1),
      deaths: 2,
      died: [
        { at: iso(-90 * MINUTE), back_at: iso(-HOUR) },
        { at: iso(-10), back_at: null },
      ],
      jobs_done: 12_345,
      jobs_failed: 3,
      jobs_requeued: 7,
      bytes_in: 5_000_000_123,
      bytes_out: 987_654_321,
      last_seen: at(-11),
      resources: {
        cpu_load: 12.5,
        cores: 16,
        mem_free: 8_589_934_592,
        mem_total: 34_359_738_368,
        gpu: {
          present: true,
          model: 'NVIDIA RTX 4090',
          memory_total_mb: 24_564,
          memory_free_mb: 20_000.25,
          utilization: 3,
        },
      },
    },
    'w-old': {
      worker_id: 'w-old',
      registrations: 1,
      registered: [iso(-3 * HOUR)],
      left_at: iso(-2 * HOUR + 123),
      deaths: 0,
      died: [],
      jobs_done: 1,
      jobs_failed: 0,
      jobs_requeued: 0,
      bytes_in: 10,
      bytes_out: 20,
      last_seen: at(-2 * HOUR),
      resources: { cpu_load: 0, cores: 1, mem_free: 1024, mem_total: 2048, gpu: { present: false } },
    },
  };
  return data;
}

/** The record collections of a Data, each of its own record type (indexable by a generic collection). */
type Records = { [C in Collection]: Record<string, Data[C][string]> };

/** What a record reads back as: its optional fields that were null are absent. */
function expectation<R extends object>(record: R, optional: readonly string[]): R {
  return Object.fromEntries(
    Object.entries(record).filter(([name, value]) => !(value === null && optional.includes(name))),
  ) as R;
}

describe('PostgreSQL datastore: records as rows', function () {
  this.timeout(60_000);
  let server: TestPostgres | null = null;
  let pool: pg.Pool | null = null;
  const data = records();
  const all: Records = data;

  before(async function () {
    skipWithoutPostgres(this);
    server = await startPostgres();
    pool = new pg.Pool({ connectionString: server.url, max: 2 });
    await migrate(pool);
  });

  after(async () => {
    try {
      await pool?.end();
    } finally {
      await server?.stop();
    }
  });

  /** Writes records as the store does: one jsonb array of rows; with `upsert`, a record already there is changed. */
  async function write<R>(codec: TableCodec<R>, list: R[], upsert = false): Promise<void> {
    const others = codec.columns.filter((column) => column !== codec.key);
    const set = others.map((column) => `${column} = EXCLUDED.${column}`).join(', ');
    const conflict = upsert ? ` ON CONFLICT (${codec.key}) DO UPDATE SET ${set}` : '';
    await pool!.query(
      `INSERT INTO ${codec.table} SELECT * FROM jsonb_populate_recordset(NULL::${codec.table}, $1::jsonb)${conflict}`,
      [JSON.stringify(list.map((record) => codec.toRow(record)))],
    );
  }

  /** Every row of a table, decoded, keyed as the collection is. */
  async function readAll<R>(codec: TableCodec<R>): Promise<Record<string, R>> {
    const { rows } = await pool!.query<Record<string, unknown>>(`SELECT * FROM ${codec.table}`);
    return Object.fromEntries(rows.map((row) => [String(row[codec.key]), codec.fromRow(row)]));
  }

  async function roundTrip<C extends Collection>(collection: C): Promise<void> {
    const codec: TableCodec<Data[C][string]> = CODECS[collection];
    const written: Records[C] = all[collection];
    expect(Object.keys(written)).to.have.length.above(1);
    for (const [key, record] of Object.entries(written)) expect(codec.toRow(record)[codec.key]).to.equal(key);
    await write(codec, Object.values(written));
    const expected = Object.fromEntries(
      Object.entries(written).map(([key, record]) => [key, expectation(record, OPTIONAL[collection])]),
    );
    expect(await readAll(codec)).to.deep.equal(expected);
  }

  it("each codec's columns are its table's, in order, the key (its primary key) first", async () => {
    for (const collection of COLLECTIONS) {
      const codec = CODECS[collection];
      expect(codec.table).to.equal(collection);
      const { rows } = await pool!.query<{ column_name: string }>(
        `SELECT column_name FROM information_schema.columns
          WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position`,
        [codec.table],
      );
      expect(codec.columns, codec.table).to.deep.equal(rows.map((row) => row.column_name));
      const primary = await pool!.query<{ attname: string }>(
        `SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
          WHERE i.indrelid = $1::regclass AND i.indisprimary`,
        [codec.table],
      );
      expect(primary.rows.map((row) => row.attname)).to.deep.equal([codec.key]);
      expect(codec.columns[0]).to.equal(codec.key);
    }
  });

  it('toRow writes every column of every record, null where the record has nothing', () => {
    for (const collection of COLLECTIONS) {
      const codec: TableCodec<Data[typeof collection][string]> = CODECS[collection];
      for (const record of Object.values(data[collection])) {
        const row = codec.toRow(record);
        expect(Object.keys(row), codec.table).to.deep.equal([...codec.columns]);
        expect(Object.values(row)).to.not.include(undefined);
      }
    }
    const old = CODECS.workers.toRow(data.workers['w-old']!);
    expect([old.operations, old.formats, old.token_jti, old.token_expires_at]).to.deep.equal([null, null, null, null]);
    const queued = CODECS.jobs.toRow(data.jobs['job-queued']!);
    expect([queued.lease_id, queued.lease_worker_id, queued.lease_expires_at]).to.deep.equal([null, null, null]);
    expect(queued.not_before).to.equal('1970-01-01T00:00:00.000Z');
  });

  // parents before children (images and jobs refer to workloads and images): COLLECTIONS' order
  for (const collection of COLLECTIONS) {
    it(`${collection}: records are written and read back as they were`, () => roundTrip(collection));
  }

  it('epoch-ms times are stored as those instants', async () => {
    const ms = async (table: string, column: string, where: string): Promise<string> => {
      const { rows } = await pool!.query<{ ms: string }>(
        `SELECT (extract(epoch FROM ${column}) * 1000)::bigint AS ms FROM ${table} WHERE ${where}`,
      );
      return rows[0]!.ms;
    };
    expect(await ms('jobs', 'lease_expires_at', "id = 'job-running'")).to.equal(String(at(30_001)));
    expect(await ms('jobs', 'not_before', "id = 'job-queued'")).to.equal('0');
    expect(await ms('revoked_tokens', 'expires_at', "jti = 'jti-2'")).to.equal(String(at(-1)));
    expect(await ms('workers', 'token_expires_at', "id = 'w-full'")).to.equal(String(at(12 * HOUR + 7)));
    expect(await ms('worker_minutes', 'start', "worker_id = 'w-full'")).to.equal(String(minuteStart));
    expect(await ms('worker_hours', 'start', "worker_id = 'w-full'")).to.equal(String(hourStart));
    expect(await ms('worker_activity', 'last_seen', "worker_id = 'w-full'")).to.equal(String(at(-11)));
    const { rows: workers } = await pool!.query<{ tags: string[] }>(
      "SELECT tags FROM workers WHERE id = 'w-odd-strings'",
    );
    expect(workers[0]!.tags).to.deep.equal(data.workers['w-odd-strings']!.tags);
  });

  it('an upsert changes rows in place: a job gets and loses a lease, a worker its token, counters grow', async () => {
    const running = data.jobs['job-running']!;
    const queued = data.jobs['job-queued']!;
    const jobs = {
      'job-queued': {
        ...queued,
        state: 'assigned' as const,
        attempts: 1,
        lease: { worker_id: 'w-null-token', lease_id: 'lease-new', expires_at: at(60_123) },
        updated_at: iso(500),
      },
      'job-running': {
        ...running,
        state: 'failed' as const,
        lease: null,
        not_before: at(61_456),
        error: 'out of memory',
        finished_at: iso(501),
      },
    };
    await write(CODECS.jobs, Object.values(jobs), true);
    expect(await readAll(CODECS.jobs)).to.deep.equal({ ...data.jobs, ...jobs });

    const { token: _, ...withoutToken } = data.workers['w-full']!;
    const full = { ...withoutToken, operations: ['grayscale'], left_at: iso(502) };
    const nullToken = { ...data.workers['w-null-token']!, token: { jti: 'wt-10', expires_at: at(HOUR + 1) } };
    await write(CODECS.workers, [full, nullToken], true);
    const workers = await readAll(CODECS.workers);
    expect(workers['w-full']).to.deep.equal(full);
    expect(workers['w-null-token']).to.deep.equal(nullToken);
    expect(Object.keys(workers)).to.have.members(Object.keys(data.workers));

    const activity = {
      ...data.worker_activity['w-new']!,
      jobs_done: 1,
      bytes_in: 2 ** 40,
      died: [{ at: iso(400), back_at: iso(450) }],
      last_seen: at(503),
    };
    await write(CODECS.worker_activity, [activity], true);
    const activities = await readAll(CODECS.worker_activity);
    expect(activities).to.deep.equal({ ...data.worker_activity, 'w-new': activity });
  });

  it('a row without a value its record needs is refused, naming the table and the column', async () => {
    const { rows } = await pool!.query<Record<string, unknown>>("SELECT * FROM jobs WHERE id = 'job-done'");
    expect(() => CODECS.jobs.fromRow({ ...rows[0], not_before: null })).to.throw(/jobs.*not_before/);
    const { not_before: _, ...missing } = rows[0]!;
    expect(() => CODECS.jobs.fromRow(missing)).to.throw(/jobs.*not_before/);
    expect(() => CODECS.worker_minutes.fromRow({ key: 'w/1', worker_id: 'w', start: new Date(0) })).to.throw(
      /worker_minutes.*samples/,
    );
    expect(() => CODECS.images.fromRow({ ...CODECS.images.toRow(data.images['img-1']!), bytes: 'many' })).to.throw(
      /images.*bytes/,
    );
  });

  it('accepts bigint as a number and timestamptz as text, as other type parsers give them', () => {
    const row = CODECS.images.toRow(data.images['img-3']!);
    expect(CODECS.images.fromRow({ ...row, bytes: 0, seq: 9_007_199_254_740_991 })).to.deep.equal(data.images['img-3']);
    expect(CODECS.images.fromRow({ ...row, created_at: '2025-03-14 09:26:53.594+01' }).created_at).to.equal(
      iso(-HOUR + 5),
    );
  });
});
