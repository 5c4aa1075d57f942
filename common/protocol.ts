// The wire contract between the controller/scheduler and the workers: one place, imported by both.
import { z } from 'zod';
import { MAX_STEPS, OUTPUT_FORMATS, parseChain, type Operation } from './operations/index.js';

export const DEFAULT_CONTROLLER_PORT = 40899;
export const DEFAULT_API_PORT = 8080;

/** The largest GPU memory a report may claim, in MB (16 TiB): a bound for what comes off the bus, not a real size. */
export const MAX_GPU_MEMORY_MB = 16 * 1024 * 1024;
/** The largest machine memory a report may claim, in bytes (1 PiB). */
export const MAX_MEMORY_BYTES = 2 ** 50;

export const gpuSchema = z.object({
  present: z.boolean(),
  model: z.string().max(200).optional(),
  memory_total_mb: z.number().min(0).max(MAX_GPU_MEMORY_MB).optional(),
  memory_free_mb: z.number().min(0).max(MAX_GPU_MEMORY_MB).optional(),
  /** How busy the GPU is now, percent; absent when it cannot be read (and from workers before it was sent). */
  utilization: z.number().min(0).max(100).optional(),
});
export type Gpu = z.infer<typeof gpuSchema>;

export const resourcesSchema = z.object({
  cpu_load: z.number().min(0).max(100),
  cores: z.number().int().positive().max(4096),
  mem_free: z.number().min(0).max(MAX_MEMORY_BYTES),
  mem_total: z.number().positive().max(MAX_MEMORY_BYTES),
  gpu: gpuSchema,
});
export type Resources = z.infer<typeof resourcesSchema>;

const shortText = z.string().min(1).max(200);
const tagSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, 'tags are letters, digits, "_", "." and "-"');
export const tagsSchema = z.array(tagSchema).max(32);
export const workerNameSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, 'worker names are letters, digits, "_", "." and "-"');

export const leaseRefSchema = z.object({ job_id: shortText, lease_id: shortText });
export type LeaseRef = z.infer<typeof leaseRefSchema>;

// --- announcements (controller PUB -> workers SUB), best effort ---
export const ANNOUNCE = 'announce';
export const announceSchema = z.object({
  system_name: shortText,
  register_port: z.number().int().min(1).max(65535),
  time: z.string(),
});
export type Announcement = z.infer<typeof announceSchema>;

// --- worker -> controller calls (REQ -> controller REP) ---
// `register` goes to the announced register port, whose socket takes messages of up to REGISTER_MAX_BYTES;
// `heartbeat`, `fail` and `goodbye` go to the session port the register reply names (`session_port`), whose
// socket takes messages of up to SESSION_MAX_BYTES and answers "unauthorized", unparsed, any message
// without a valid worker token in its first TOKEN_WINDOW_BYTES (see sessionTokenOf).
export const REGISTER_MAX_BYTES = 64 * 1024;
export const SESSION_MAX_BYTES = 512 * 1024;
export const TOKEN_WINDOW_BYTES = 8 * 1024;
const TOKEN_FIELD = /"token"\s*:\s*"([A-Za-z0-9_.-]{1,4000})"/;

/** The worker token of a session-port message, read without parsing it: the first `"token": "..."` near its start. */
export function sessionTokenOf(message: Buffer): string | null {
  return TOKEN_FIELD.exec(message.subarray(0, TOKEN_WINDOW_BYTES).toString('latin1'))?.[1] ?? null;
}

/**
 * A chain of operations on the wire: read with the same rules as a client's (common/operations), every
 * default filled in, so a worker never meets a step or a value the API would have refused.
 */
export const chainSchema = z
  .array(z.unknown())
  .max(MAX_STEPS)
  .transform((steps, context): Operation[] => {
    const parsed = parseChain(steps);
    if (parsed.ok) return parsed.chain;
    context.addIssue({ code: 'custom', message: parsed.error });
    return z.NEVER;
  });

export const registerParamsSchema = z.object({
  secret: z.string().min(1).max(500),
  name: workerNameSchema,
  instance_id: shortText,
  tags: tagsSchema,
  rpc_address: z.string().regex(/^tcp:\/\/[^\s/]+:\d{1,5}$/, 'rpc_address is tcp://host:port'),
  slots: z.number().int().min(1).max(256),
  /**
   * Assignments it takes beyond its slots, held until a slot frees (--prefetch): its next job is there when one
   * ends. Absent from an older worker: none.
   */
  prefetch: z.number().int().min(0).max(256).optional(),
  engine: z.enum(['sharp', 'jimp']),
  filters: z.array(shortText).max(64),
  /**
   * What its engine can do: the operations and the output formats. Absent from an older worker: the
   * operations are its filters, and it writes the input's format only.
   */
  operations: z.array(shortText).max(64).optional(),
  formats: z.array(z.enum(OUTPUT_FORMATS)).max(8).optional(),
  resources: resourcesSchema,
  running: z.array(leaseRefSchema).max(1024),
  /**
   * The identity of the images folder this worker can see (`--images-dir`): the content of its
   * STORE_ID_FILE. When it is the server's own, the worker reads originals and writes results by path.
   */
  images_dir_id: z.string().max(200).optional(),
  /** It takes several assignments in one `assign_many` call. Absent from an older worker: one `assign` per job. */
  assign_many: z.boolean().optional(),
});
export type RegisterParams = z.input<typeof registerParamsSchema>;
export const registerResultSchema = z.object({
  worker_id: shortText,
  token: z.string(),
  api_url: z.string().nullable(), // null: the API is at the controller's host, on api_port
  api_port: z.number().int().min(1).max(65535),
  heartbeat_ms: z.number().int().positive(),
  lease_ms: z.number().int().positive(),
  /**
   * The API's --max-pixels: the engines refuse to decode a larger image. Absent from an older controller;
   * the worker then keeps its own default.
   */
  max_pixels: z.number().int().positive().optional(),
  // where heartbeat, fail and goodbye go (same host); absent from controllers before it: the register port
  session_port: z.number().int().min(1).max(65535).optional(),
  /** Its API takes stored results reported together (`POST /results`). Absent from an older controller: one each. */
  results_together: z.boolean().optional(),
});
export type RegisterResult = z.infer<typeof registerResultSchema>;

export const heartbeatParamsSchema = z.object({
  token: z.string().max(4000),
  resources: resourcesSchema,
  running: z.array(leaseRefSchema).max(1024),
  /**
   * The lease ids of the held jobs that wait for a slot, never started (--prefetch): if the worker dies,
   * they go back at no cost.
   */
  waiting: z.array(shortText).max(1024).optional(),
  /** The jobs it takes beyond its slots now (its --prefetch auto follows its jobs' length). Absent: unchanged. */
  prefetch: z.number().int().min(0).max(256).optional(),
});
export type HeartbeatParams = z.infer<typeof heartbeatParamsSchema>;
export const heartbeatResultSchema = z.object({
  known: z.boolean(),
  cancel: z.array(z.string()),
});
export type HeartbeatResult = z.infer<typeof heartbeatResultSchema>;

export const failParamsSchema = z.object({
  token: z.string().max(4000),
  job_id: shortText,
  lease_id: shortText,
  error: z.string().max(2000),
  retryable: z.boolean(),
  /**
   * The image store (or the API in front of it) could not be reached or failed: not the job's fault. The
   * attempt is given back, and the job waits until the store answers again.
   */
  store_unavailable: z.boolean().optional(),
});
export type FailParams = z.infer<typeof failParamsSchema>;

export const goodbyeParamsSchema = z.object({
  token: z.string().max(4000),
  /** Jobs it took beyond its slots and never started (--prefetch): they go back at no cost. */
  unstarted: z.array(leaseRefSchema).max(1024).optional(),
});
export type GoodbyeParams = z.infer<typeof goodbyeParamsSchema>;

export const acceptedResultSchema = z.object({ accepted: z.boolean() });
export type AcceptedResult = z.infer<typeof acceptedResultSchema>;

// --- worker -> API: the filtered image of a job (POST /images, the image as the whole body) ---
/**
 * The fields of a worker's result upload, sent in the query string. The answered upload is the
 * job's completion, accepted only from the lease holder.
 */
export const filteredUploadSchema = z.object({
  type: z.literal('filtered'),
  job_id: shortText,
  lease_id: shortText,
  /**
   * "true": no body; the worker already put the result where its assignment said (a presigned PUT, or
   * by path into the images folder), and the server checks it there.
   */
  stored: z.literal('true').optional(),
});
export type FilteredUpload = z.infer<typeof filteredUploadSchema>;

// --- worker -> API: stored results reported together (POST /results, JSON) ---
/** Stored results one `POST /results` reports at most. */
export const MAX_RESULTS_PER_REPORT = 64;

/** Results the worker put in the store itself, each with its lease: each completes its job as its own report would. */
export const storedResultsSchema = z.object({
  results: z.array(leaseRefSchema).min(1).max(MAX_RESULTS_PER_REPORT),
});
export type StoredResults = z.infer<typeof storedResultsSchema>;

/** The answer to each reported result, in the order reported: 201 and the image, or its own report's error. */
export const storedResultAnswerSchema = z.object({
  job_id: z.string(),
  status: z.number().int(),
  image_id: z.string().optional(),
  error: z.object({ code: z.number().int(), message: z.string() }).optional(),
});
export const storedResultAnswersSchema = z.object({ results: z.array(storedResultAnswerSchema) });
export type StoredResultAnswer = z.infer<typeof storedResultAnswerSchema>;

// --- where a job's bytes come from and go to ---
/** The file in the images folder that names its identity: a worker that reads the same content sees the folder. */
export const STORE_ID_FILE = '.store-id';

/** A key in the images folder: `<workload name>/<file name>`, plain names only (never `..`, never absolute). */
export const storeKeySchema = z
  .string()
  .max(300)
  .regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}\/[A-Za-z0-9][A-Za-z0-9_.-]{0,200}$/, 'a key is <workload>/<file>');

const presignedUrlSchema = z.object({
  url: z.url({ protocol: /^https?$/ }).max(8000),
  /** Headers the request must carry (what was signed with it). */
  headers: z.record(z.string().max(100), z.string().max(1000)).optional(),
});

/**
 * Where the original comes from: the API (`GET /images/{id}`, the default), the images folder by path
 * (a worker that sees it), or a presigned GET on the object store.
 */
export const jobSourceSchema = z.discriminatedUnion('via', [
  z.object({ via: z.literal('api') }),
  z.object({ via: z.literal('path'), key: storeKeySchema }),
  presignedUrlSchema.extend({ via: z.literal('url') }),
]);
export type JobSource = z.infer<typeof jobSourceSchema>;

/**
 * Where the result goes: the API (`POST /images`, the default); or put directly, by path (written
 * aside and renamed to `key` in the images folder) or by a presigned PUT, then reported with
 * `stored=true`. `mime` is the type the result must have (its key's extension says it too).
 */
export const jobTargetSchema = z.discriminatedUnion('via', [
  z.object({ via: z.literal('api') }),
  z.object({ via: z.literal('path'), key: storeKeySchema, mime: shortText }),
  presignedUrlSchema.extend({ via: z.literal('url'), mime: shortText }),
]);
export type JobTarget = z.infer<typeof jobTargetSchema>;

// --- scheduler -> worker calls (REQ -> worker REP) ---
export const assignParamsSchema = z.object({
  token: z.string().max(4000),
  job_id: shortText,
  lease_id: shortText,
  image_id: shortText,
  workload_id: shortText,
  /** The course filter; absent for a workload of operations. */
  filter: shortText.optional(),
  /** The chain to run; absent from an older controller: the filter's one-step chain. */
  operations: chainSchema.optional(),
  /**
   * The original's dimensions, from its header at upload: the worker estimates the job's memory from
   * them. Absent from an older controller; the worker then admits the job on its slots alone.
   */
  width: z.number().int().positive().optional(),
  height: z.number().int().positive().optional(),
  /** Where its bytes come from and go; absent from an older controller: through the API. */
  source: jobSourceSchema.optional(),
  target: jobTargetSchema.optional(),
});
/** An assignment as the scheduler sends it (a chain as plain steps) ... */
export type AssignParams = z.input<typeof assignParamsSchema>;
/** ... and as the worker reads it (a checked chain, every default filled in). */
export type Assignment = z.output<typeof assignParamsSchema>;

/** Assignments one `assign_many` call carries at most. */
export const MAX_ASSIGNMENTS_PER_CALL = 64;

/**
 * Several assignments in one call, to a worker that registered with `assign_many`: each taken or declined as its
 * own `assign` would be; the answer's `accepted` says which, in the order sent.
 */
export const assignManyParamsSchema = z.object({
  token: z.string().max(4000),
  jobs: z
    .array(assignParamsSchema.omit({ token: true }))
    .min(1)
    .max(MAX_ASSIGNMENTS_PER_CALL),
});
export type AssignManyParams = z.input<typeof assignManyParamsSchema>;
export const acceptedManyResultSchema = z.object({ accepted: z.array(z.boolean()).max(MAX_ASSIGNMENTS_PER_CALL) });
export type AcceptedManyResult = z.infer<typeof acceptedManyResultSchema>;

export const cancelParamsSchema = z.object({ token: z.string().max(4000), job_id: shortText });
export type CancelParams = z.infer<typeof cancelParamsSchema>;

export const pingParamsSchema = z.object({ token: z.string().max(4000) });
export const pingResultSchema = z.object({ name: z.string(), running: z.number().int(), slots: z.number().int() });
export type PingResult = z.infer<typeof pingResultSchema>;

export const WORKER_METHODS = { assign: 'assign', assignMany: 'assign_many', cancel: 'cancel', ping: 'ping' } as const;
export const CONTROLLER_METHODS = {
  register: 'register',
  heartbeat: 'heartbeat',
  fail: 'fail',
  goodbye: 'goodbye',
} as const;
