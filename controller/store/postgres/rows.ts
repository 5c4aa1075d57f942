// Each collection's records as rows of its table (migrations/): the conversions at the store's boundary.
import pg from 'pg';
import type {
  Collection,
  Data,
  ImageRecord,
  Job,
  RevokedToken,
  UploadSlotRecord,
  User,
  WorkerActivity,
  WorkerHour,
  WorkerMinute,
  WorkerRecord,
  Workload,
} from '../schema.js';
import { workerHistoryKey } from '../schema.js';

/** A record of a collection as one row of its table. */
export interface TableCodec<R> {
  table: string;
  /** The primary key column: its value is the record's key in the collection. */
  key: string;
  /**
   * A unique bigint column the table is read in order of at open, instead of its key: images in upload order
   * (`seq`), which the originals index then takes as they come instead of sorting a million of them.
   */
  loadOrder?: string;
  /** Every column, the key first. */
  columns: readonly string[];
  /**
   * The row as a JSON object for jsonb_populate_recordset(NULL::<table>, $1::jsonb): one property per column
   * (every column present, null where the record has nothing); timestamptz as ISO-8601 strings, text[] as
   * JSON arrays of strings, jsonb columns as JSON values.
   */
  toRow(record: R): Record<string, unknown>;
  /**
   * The record from a row as node-postgres returns it for `SELECT *` (timestamptz as Date; int8/bigint as
   * string unless a parser is set: accept both string and number; text[] as string[]; jsonb already parsed).
   */
  fromRow(row: Record<string, unknown>): R;
}

export type Codecs = { [C in Collection]: TableCodec<Data[C][string]> };

// --- writing ---

/** An epoch-ms time as a timestamptz value. */
const fromMs = (ms: number): string => new Date(ms).toISOString();
const fromMsOrNull = (ms: number | null | undefined): string | null => (ms == null ? null : fromMs(ms));

// --- reading: a row's column, of the type the record needs ---

/** The ISO string of a time as schema.ts keeps it (Date.prototype.toISOString's, years 0000-9999). */
const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
/** A timestamptz as PostgreSQL writes it in a session with DateStyle ISO and TimeZone UTC. */
const PG_UTC = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})(?:\.(\d{1,6}))?\+00$/;

/**
 * A timestamptz's text, read in a UTC session, as the ISO string schema.ts keeps: the same string a Date made
 * of it gives (milliseconds cut, not rounded), without making the Date. Reading a million rows, the Dates the
 * driver makes and the strings made of them cost seconds. Any other form (another time zone, a year past 9999,
 * infinity) goes the Date's way, or stays text for the reader to refuse.
 */
export function utcTimeAsIso(text: string): string {
  const match = PG_UTC.exec(text);
  if (!match) {
    const date: unknown = driverTime(text);
    return date instanceof Date && !Number.isNaN(date.getTime()) ? date.toISOString() : text;
  }
  const millis = (match[3] ?? '').padEnd(3, '0').slice(0, 3);
  return `${match[1]}T${match[2]}.${millis}Z`;
}

/** node-postgres's own reading of a timestamptz's text, for the forms utcTimeAsIso does not take itself. */
const driverTime = pg.types.getTypeParser(pg.types.builtins.TIMESTAMPTZ) as (text: string) => Date;

/** Reads one table's rows: each getter throws, naming the table and the column, when the value is not there. */
class RowReader {
  constructor(
    private readonly table: string,
    private readonly row: Record<string, unknown>,
  ) {}

  private fail(column: string, what: string): never {
    const value = this.row[column];
    const got = value === undefined ? 'nothing' : value === null ? 'null' : typeof value;
    throw new Error(`a row of ${this.table} has ${got} in ${column}, not ${what}`);
  }

  private present(column: string, what: string): unknown {
    const value = this.row[column];
    if (value === null || value === undefined) this.fail(column, what);
    return value;
  }

  isNull(column: string): boolean {
    const value = this.row[column];
    return value === null || value === undefined;
  }

  text(column: string): string {
    const value = this.present(column, 'a text');
    return typeof value === 'string' ? value : this.fail(column, 'a text');
  }

  textOrNull(column: string): string | null {
    return this.isNull(column) ? null : this.text(column);
  }

  /** One of a text column's allowed values. */
  oneOf<T extends string>(column: string, values: readonly T[]): T {
    const value = this.text(column);
    const found = values.find((allowed) => allowed === value);
    return found ?? this.fail(column, `one of ${values.join(', ')}`);
  }

  /** integer (a number) or bigint (a string, unless a type parser makes it a number). */
  number(column: string): number {
    const value = this.present(column, 'a number');
    const number = typeof value === 'number' ? value : typeof value === 'string' ? Number(value) : Number.NaN;
    return Number.isFinite(number) ? number : this.fail(column, 'a number');
  }

  numberOrNull(column: string): number | null {
    return this.isNull(column) ? null : this.number(column);
  }

  /** A timestamptz: a Date (or its text, when no type parser made it one). */
  private date(column: string): Date {
    const value = this.present(column, 'a time');
    const date = value instanceof Date ? value : typeof value === 'string' ? new Date(value) : null;
    return date && !Number.isNaN(date.getTime()) ? date : this.fail(column, 'a time');
  }

  /** A timestamptz as the ISO string schema.ts keeps. */
  iso(column: string): string {
    const value = this.row[column];
    // already the string kept (the open reads times as text: see utcTimeAsIso)
    if (typeof value === 'string' && ISO_UTC.test(value)) return value;
    return this.date(column).toISOString();
  }

  isoOrNull(column: string): string | null {
    return this.isNull(column) ? null : this.iso(column);
  }

  /** A timestamptz as the epoch ms schema.ts keeps. */
  ms(column: string): number {
    return this.date(column).getTime();
  }

  msOrNull(column: string): number | null {
    return this.isNull(column) ? null : this.ms(column);
  }

  /** A text[]. */
  texts(column: string): string[] {
    const value = this.present(column, 'a text array');
    if (!Array.isArray(value)) this.fail(column, 'a text array');
    const items: unknown[] = value;
    return items.every((item): item is string => typeof item === 'string') ? items : this.fail(column, 'a text array');
  }

  textsOrNull(column: string): string[] | null {
    return this.isNull(column) ? null : this.texts(column);
  }

  /** A jsonb value, as node-postgres parsed it: its shape is the record's (nothing checks it). */
  json<T>(column: string): T {
    return this.present(column, 'a JSON value') as T;
  }

  jsonOrNull<T>(column: string): T | null {
    return this.isNull(column) ? null : this.json<T>(column);
  }
}

/** `{ [name]: value }` when there is a value, else nothing: a null column of an optional (`?:`) field. */
function optional<K extends string, V>(name: K, value: V | null): { [P in K]?: V } {
  return (value === null ? {} : { [name]: value }) as { [P in K]?: V };
}

// --- the codecs ---

const users: TableCodec<User> = {
  table: 'users',
  key: 'username',
  columns: ['username', 'password_hash', 'created_at'],
  toRow: (user) => ({ username: user.username, password_hash: user.password_hash, created_at: user.created_at }),
  fromRow(row) {
    const read = new RowReader('users', row);
    return {
      username: read.text('username'),
      password_hash: read.text('password_hash'),
      created_at: read.iso('created_at'),
    };
  },
};

const revokedTokens: TableCodec<RevokedToken> = {
  table: 'revoked_tokens',
  key: 'jti',
  columns: ['jti', 'expires_at'],
  toRow: (token) => ({ jti: token.jti, expires_at: fromMs(token.expires_at) }),
  fromRow(row) {
    const read = new RowReader('revoked_tokens', row);
    return { jti: read.text('jti'), expires_at: read.ms('expires_at') };
  },
};

const workers: TableCodec<WorkerRecord> = {
  table: 'workers',
  key: 'id',
  columns: [
    'id',
    'name',
    'instance_id',
    'tags',
    'rpc_address',
    'slots',
    'engine',
    'filters',
    'operations',
    'formats',
    'registered_at',
    'left_at',
    'token_jti',
    'token_expires_at',
  ],
  toRow: (worker) => ({
    id: worker.id,
    name: worker.name,
    instance_id: worker.instance_id,
    tags: worker.tags,
    rpc_address: worker.rpc_address,
    slots: worker.slots,
    engine: worker.engine,
    filters: worker.filters,
    operations: worker.operations ?? null,
    formats: worker.formats ?? null,
    registered_at: worker.registered_at,
    left_at: worker.left_at,
    token_jti: worker.token?.jti ?? null,
    token_expires_at: fromMsOrNull(worker.token?.expires_at),
  }),
  fromRow(row) {
    const read = new RowReader('workers', row);
    const token = read.isNull('token_jti')
      ? null
      : { jti: read.text('token_jti'), expires_at: read.ms('token_expires_at') };
    return {
      id: read.text('id'),
      name: read.text('name'),
      instance_id: read.text('instance_id'),
      tags: read.texts('tags'),
      rpc_address: read.text('rpc_address'),
      slots: read.number('slots'),
      engine: read.oneOf('engine', ['sharp', 'jimp'] as const),
      filters: read.texts('filters'),
      ...optional('operations', read.textsOrNull('operations')),
      ...optional('formats', read.textsOrNull('formats')),
      registered_at: read.iso('registered_at'),
      left_at: read.isoOrNull('left_at'),
      ...optional('token', token),
    };
  },
};

const workloads: TableCodec<Workload> = {
  table: 'workloads',
  key: 'id',
  columns: ['id', 'owner', 'name', 'filter', 'operations', 'tags', 'created_at', 'cancelled_at'],
  toRow: (workload) => ({
    id: workload.id,
    owner: workload.owner,
    name: workload.name,
    filter: workload.filter,
    operations: workload.operations ?? null,
    tags: workload.tags,
    created_at: workload.created_at,
    cancelled_at: workload.cancelled_at ?? null,
  }),
  fromRow(row) {
    const read = new RowReader('workloads', row);
    return {
      id: read.text('id'),
      owner: read.text('owner'),
      name: read.text('name'),
      filter: read.textOrNull('filter'),
      ...optional('operations', read.jsonOrNull<NonNullable<Workload['operations']>>('operations')),
      tags: read.texts('tags'),
      created_at: read.iso('created_at'),
      ...optional('cancelled_at', read.isoOrNull('cancelled_at')),
    };
  },
};

const images: TableCodec<ImageRecord> = {
  table: 'images',
  key: 'id',
  loadOrder: 'seq',
  columns: [
    'id',
    'workload_id',
    'owner',
    'type',
    'source_image_id',
    'job_id',
    'file',
    'mime',
    'bytes',
    'width',
    'height',
    'created_at',
    'seq',
  ],
  toRow: (image) => ({
    id: image.id,
    workload_id: image.workload_id,
    owner: image.owner,
    type: image.type,
    source_image_id: image.source_image_id,
    job_id: image.job_id,
    file: image.file,
    mime: image.mime,
    bytes: image.bytes,
    width: image.width,
    height: image.height,
    created_at: image.created_at,
    seq: image.seq,
  }),
  fromRow(row) {
    const read = new RowReader('images', row);
    return {
      id: read.text('id'),
      workload_id: read.text('workload_id'),
      owner: read.text('owner'),
      type: read.oneOf('type', ['original', 'filtered'] as const),
      source_image_id: read.textOrNull('source_image_id'),
      job_id: read.textOrNull('job_id'),
      file: read.text('file'),
      mime: read.text('mime'),
      bytes: read.number('bytes'),
      width: read.number('width'),
      height: read.number('height'),
      created_at: read.iso('created_at'),
      seq: read.number('seq'),
    };
  },
};

const JOB_STATES = ['queued', 'assigned', 'running', 'done', 'failed', 'cancelled'] as const;

const jobs: TableCodec<Job> = {
  table: 'jobs',
  key: 'id',
  columns: [
    'id',
    'workload_id',
    'image_id',
    'state',
    'attempts',
    'lease_id',
    'lease_worker_id',
    'lease_expires_at',
    'not_before',
    'error',
    'filtered_image_id',
    'created_at',
    'updated_at',
    'started_at',
    'finished_at',
  ],
  toRow: (job) => ({
    id: job.id,
    workload_id: job.workload_id,
    image_id: job.image_id,
    state: job.state,
    attempts: job.attempts,
    lease_id: job.lease?.lease_id ?? null,
    lease_worker_id: job.lease?.worker_id ?? null,
    lease_expires_at: fromMsOrNull(job.lease?.expires_at),
    not_before: fromMs(job.not_before),
    error: job.error,
    filtered_image_id: job.filtered_image_id,
    created_at: job.created_at,
    updated_at: job.updated_at,
    started_at: job.started_at,
    finished_at: job.finished_at,
  }),
  fromRow(row) {
    const read = new RowReader('jobs', row);
    return {
      id: read.text('id'),
      workload_id: read.text('workload_id'),
      image_id: read.text('image_id'),
      state: read.oneOf('state', JOB_STATES),
      attempts: read.number('attempts'),
      lease: read.isNull('lease_id')
        ? null
        : {
            worker_id: read.text('lease_worker_id'),
            lease_id: read.text('lease_id'),
            expires_at: read.ms('lease_expires_at'),
          },
      not_before: read.ms('not_before'),
      error: read.textOrNull('error'),
      filtered_image_id: read.textOrNull('filtered_image_id'),
      created_at: read.iso('created_at'),
      updated_at: read.iso('updated_at'),
      started_at: read.isoOrNull('started_at'),
      finished_at: read.isoOrNull('finished_at'),
    };
  },
};

const workerMinutes: TableCodec<WorkerMinute> = {
  table: 'worker_minutes',
  key: 'key',
  columns: ['key', 'worker_id', 'start', 'samples'],
  toRow: (minute) => ({
    key: workerHistoryKey(minute.worker_id, minute.start),
    worker_id: minute.worker_id,
    start: fromMs(minute.start),
    samples: minute.samples,
  }),
  fromRow(row) {
    const read = new RowReader('worker_minutes', row);
    return {
      worker_id: read.text('worker_id'),
      start: read.ms('start'),
      samples: read.json<WorkerMinute['samples']>('samples'),
    };
  },
};

const workerHours: TableCodec<WorkerHour> = {
  table: 'worker_hours',
  key: 'key',
  columns: ['key', 'worker_id', 'start', 'points'],
  toRow: (hour) => ({
    key: workerHistoryKey(hour.worker_id, hour.start),
    worker_id: hour.worker_id,
    start: fromMs(hour.start),
    points: hour.points,
  }),
  fromRow(row) {
    const read = new RowReader('worker_hours', row);
    return {
      worker_id: read.text('worker_id'),
      start: read.ms('start'),
      points: read.json<WorkerHour['points']>('points'),
    };
  },
};

const workerActivity: TableCodec<WorkerActivity> = {
  table: 'worker_activity',
  key: 'worker_id',
  columns: [
    'worker_id',
    'registrations',
    'registered',
    'left_at',
    'deaths',
    'died',
    'jobs_done',
    'jobs_failed',
    'jobs_requeued',
    'bytes_in',
    'bytes_out',
    'last_seen',
    'resources',
  ],
  toRow: (activity) => ({
    worker_id: activity.worker_id,
    registrations: activity.registrations,
    registered: activity.registered,
    left_at: activity.left_at,
    deaths: activity.deaths,
    died: activity.died,
    jobs_done: activity.jobs_done,
    jobs_failed: activity.jobs_failed,
    jobs_requeued: activity.jobs_requeued,
    bytes_in: activity.bytes_in,
    bytes_out: activity.bytes_out,
    last_seen: fromMsOrNull(activity.last_seen),
    resources: activity.resources,
  }),
  fromRow(row) {
    const read = new RowReader('worker_activity', row);
    return {
      worker_id: read.text('worker_id'),
      registrations: read.number('registrations'),
      registered: read.json<WorkerActivity['registered']>('registered'),
      left_at: read.isoOrNull('left_at'),
      deaths: read.number('deaths'),
      died: read.json<WorkerActivity['died']>('died'),
      jobs_done: read.number('jobs_done'),
      jobs_failed: read.number('jobs_failed'),
      jobs_requeued: read.number('jobs_requeued'),
      bytes_in: read.number('bytes_in'),
      bytes_out: read.number('bytes_out'),
      last_seen: read.msOrNull('last_seen'),
      resources: read.jsonOrNull<NonNullable<WorkerActivity['resources']>>('resources'),
    };
  },
};

const uploadSlots: TableCodec<UploadSlotRecord> = {
  table: 'upload_slots',
  key: 'id',
  columns: ['id', 'owner', 'workload_id', 'key', 'mime', 'expires_at', 'bytes'],
  toRow: (slot) => ({
    id: slot.id,
    owner: slot.owner,
    workload_id: slot.workload_id,
    key: slot.key,
    mime: slot.mime,
    expires_at: fromMs(slot.expires_at),
    bytes: slot.bytes ?? null,
  }),
  fromRow(row) {
    const read = new RowReader('upload_slots', row);
    return {
      id: read.text('id'),
      owner: read.text('owner'),
      workload_id: read.text('workload_id'),
      key: read.text('key'),
      mime: read.oneOf('mime', ['image/png', 'image/jpeg'] as const),
      ...optional('bytes', read.numberOrNull('bytes')),
      expires_at: read.ms('expires_at'),
    };
  },
};

export const CODECS: Codecs = {
  users,
  revoked_tokens: revokedTokens,
  workers,
  workloads,
  images,
  jobs,
  worker_minutes: workerMinutes,
  worker_hours: workerHours,
  worker_activity: workerActivity,
  upload_slots: uploadSlots,
};
