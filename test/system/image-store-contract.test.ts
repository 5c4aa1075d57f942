// The image store port, one set of cases for both implementations: a local folder (LocalImageStore)
// and an S3 bucket (S3ImageStore, against s3rver in a child process). Then what only the S3 store
// does: presigned URLs, a check() that names what is wrong, and an outage it survives.
import { randomBytes, randomUUID } from 'node:crypto';
import { access, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { expect } from 'chai';
import {
  type ImageStore,
  ImageStoreConfigError,
  ImageStoreUnavailable,
  LocalImageStore,
} from '../../controller/image-store/index.js';
import { ObjectPresigner } from '../../controller/image-store/s3-presign.js';
import { createS3Client, S3ImageStore } from '../../controller/image-store/s3-store.js';
import { freePorts } from '../helpers/ports.js';
import { setEnv, startS3Server, storeConfigFor, type TestS3Server } from '../helpers/s3-server.js';

/** A store for one test, with every key it holds (from outside the store) and its cleanup. */
interface Harness {
  store: ImageStore;
  keys(): Promise<string[]>;
  /** Puts an object as a worker does, not through the store: by path, or by a presigned PUT. */
  putFromOutside(key: string, data: Buffer): Promise<void>;
  cleanup(): Promise<void>;
}

async function readAll(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}

function memory(data: Buffer | string) {
  return { kind: 'memory' as const, data: Buffer.from(data) };
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

function imageStoreContract(name: string, makeHarness: () => Promise<Harness>): void {
  describe(`image store contract: ${name}`, () => {
    let harness: Harness;
    let store: ImageStore;

    beforeEach(async () => {
      harness = await makeHarness();
      store = harness.store;
      // what a start does: the staging area is there after it
      await store.prepare(new Set(), new Set(), 0);
    });

    afterEach(async () => {
      await harness?.cleanup();
    });

    it('check() writes, reads and deletes a probe, and leaves nothing', async () => {
      await store.check();
      expect(await harness.keys()).to.deep.equal([]);
    });

    it('puts from memory: open gives the exact bytes and size, inspect the size and the head', async () => {
      const data = randomBytes(5000);
      await store.put(memory(data), 'w1/a.png', 'image/png');
      const opened = await store.open('w1/a.png');
      expect(opened?.size).to.equal(5000);
      expect((await readAll(opened!.body)).equals(data)).to.equal(true);
      const inspected = await store.inspect('w1/a.png', 64);
      expect(inspected?.size).to.equal(5000);
      expect(inspected!.head.equals(data.subarray(0, 64))).to.equal(true);
      expect(await harness.keys()).to.deep.equal(['w1/a.png']);
    });

    it('inspect gives a shorter head for a short object, and only the size for headBytes 0', async () => {
      await store.put(memory('tiny'), 'w1/t.png', 'image/png');
      const short = await store.inspect('w1/t.png', 1024);
      expect(short?.size).to.equal(4);
      expect(short!.head.toString()).to.equal('tiny');
      const sizeOnly = await store.inspect('w1/t.png', 0);
      expect(sizeOnly?.size).to.equal(4);
      expect(sizeOnly!.head.length).to.equal(0);
    });

    it('keeps an empty object: size 0, no bytes, no head', async () => {
      await store.put(memory(Buffer.alloc(0)), 'w1/empty.png', 'image/png');
      const opened = await store.open('w1/empty.png');
      expect(opened?.size).to.equal(0);
      expect((await readAll(opened!.body)).length).to.equal(0);
      const inspected = await store.inspect('w1/empty.png', 16);
      expect(inspected?.size).to.equal(0);
      expect(inspected!.head.length).to.equal(0);
      expect((await store.inspect('w1/empty.png', 0))?.size).to.equal(0);
    });

    it('puts a staged file (consumed) and gives its bytes back', async () => {
      const data = randomBytes(3 * 1024 * 1024 + 17);
      const staged = store.stagingPath();
      await writeFile(staged, data);
      await store.put({ kind: 'staged', path: staged }, 'w1/big.jpg', 'image/jpeg');
      expect(await exists(staged)).to.equal(false);
      const opened = await store.open('w1/big.jpg');
      expect(opened?.size).to.equal(data.length);
      expect((await readAll(opened!.body)).equals(data)).to.equal(true);
      expect((await store.inspect('w1/big.jpg', 8))!.head.equals(data.subarray(0, 8))).to.equal(true);
    });

    it('discardStaged removes a staged upload, and nothing outside the staging area', async () => {
      const staged = store.stagingPath();
      await writeFile(staged, 'upload');
      await store.discardStaged(staged);
      expect(await exists(staged)).to.equal(false);
      const outside = path.join(await mkdtemp(path.join(tmpdir(), 'dpip-outside-')), 'file');
      await writeFile(outside, 'keep me');
      await store.discardStaged(outside);
      expect(await exists(outside)).to.equal(true);
      await rm(path.dirname(outside), { recursive: true, force: true });
    });

    it('settles an object a worker put itself, and leaves it as it was put', async () => {
      await store.makeFolder('w1');
      const data = randomBytes(7000);
      await harness.putFromOutside('w1/result.png', data);
      await Promise.all([store.settle('w1/result.png'), store.settle('w1/result.png')]);
      const opened = await store.open('w1/result.png');
      expect((await readAll(opened!.body)).equals(data)).to.equal(true);
      expect(await harness.keys()).to.deep.equal(['w1/result.png']);
    });

    it('a missing key is null for open and inspect', async () => {
      expect(await store.open('w1/none.png')).to.equal(null);
      expect(await store.inspect('w1/none.png', 32)).to.equal(null);
      expect(await store.inspect('w1/none.png', 0)).to.equal(null);
    });

    it('remove takes the object away, and is no error when there is none', async () => {
      await store.put(memory('bytes'), 'w1/r.png', 'image/png');
      await store.remove('w1/r.png');
      expect(await store.open('w1/r.png')).to.equal(null);
      await store.remove('w1/r.png');
      await store.remove('w9/never.png');
      expect(await harness.keys()).to.deep.equal([]);
    });

    it("removeFolder removes that folder's objects only (w1, not w10)", async () => {
      await store.makeFolder('w1');
      await store.makeFolder('w10');
      await store.put(memory('a'), 'w1/a.png', 'image/png');
      await store.put(memory('b'), 'w1/b.png', 'image/png');
      await store.put(memory('c'), 'w10/c.png', 'image/png');
      await store.removeFolder('w1');
      expect(await harness.keys()).to.deep.equal(['w10/c.png']);
      await store.removeFolder('w1');
      await store.removeFolderIfEmpty('w1');
      expect((await store.inspect('w10/c.png', 0))?.size).to.equal(1);
    });

    it('removeFolder takes every object that was there, while a worker still puts results in it', async () => {
      await store.makeFolder('w1');
      const there = Array.from({ length: 200 }, (_, index) => `w1/${index}.png`);
      for (const key of there) await harness.putFromOutside(key, Buffer.from('a'));
      const removing = store.removeFolder('w1');
      // a worker's late results, one after the other, as long as the removal runs (its folder may be gone)
      let settled = false;
      const finished = removing.finally(() => {
        settled = true;
      });
      for (let late = 0; late < 20 && !settled; late++)
        await harness.putFromOutside(`w1/late-${late}.png`, Buffer.from('b')).catch(() => undefined);
      await finished;
      const left = await harness.keys();
      expect(left.filter((key) => there.includes(key))).to.deep.equal([]);
      await store.removeFolder('w1');
      expect(await harness.keys()).to.deep.equal([]);
    });

    it('prepare removes unreferenced objects and folders of no workload, keeps the rest, empties staging', async () => {
      await store.put(memory('keep'), 'w1/keep.png', 'image/png');
      await store.put(memory('drop'), 'w1/drop.png', 'image/png');
      await store.put(memory('gone'), 'deleted/x.png', 'image/png');
      await store.put(memory('gone'), 'deleted/y.png', 'image/png');
      const staged = store.stagingPath();
      await writeFile(staged, 'a half upload');
      const removed = await store.prepare(new Set(['w1/keep.png']), new Set(['w1', 'w2']), 0);
      expect(removed).to.equal(3);
      expect(await harness.keys()).to.deep.equal(['w1/keep.png']);
      expect(await exists(staged)).to.equal(false);
      // the staging area is there again, empty
      const again = store.stagingPath();
      await writeFile(again, 'next upload');
      await store.discardStaged(again);
    });

    it('prepare leaves an unreferenced object younger than the grace, and removes it without one', async () => {
      await store.put(memory('fresh'), 'w1/fresh.png', 'image/png');
      expect(await store.prepare(new Set(), new Set(['w1']), 60_000)).to.equal(0);
      expect(await harness.keys()).to.deep.equal(['w1/fresh.png']);
      expect(await store.prepare(new Set(), new Set(['w1']), 0)).to.equal(1);
      expect(await harness.keys()).to.deep.equal([]);
    });
  });
}

async function filesUnder(root: string, dir = ''): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(path.join(root, dir), { withFileTypes: true }).catch(() => [])) {
    const relative = dir ? `${dir}/${entry.name}` : entry.name;
    if (entry.isDirectory()) found.push(...(await filesUnder(root, relative)));
    else found.push(relative);
  }
  return found;
}

imageStoreContract('local folder', async () => {
  const root = await mkdtemp(path.join(tmpdir(), 'dpip-local-store-'));
  const imagesDir = path.join(root, 'images');
  await mkdir(imagesDir);
  return {
    store: new LocalImageStore(imagesDir),
    keys: async () => (await filesUnder(imagesDir)).filter((key) => !key.startsWith('.incoming/')).sort(),
    putFromOutside: (key, data) => writeFile(path.join(imagesDir, key), data),
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
});

describe('S3 image store', function () {
  this.timeout(60_000);
  let server: TestS3Server;
  let restoreEnv: () => void = () => {};
  const stores: S3ImageStore[] = [];

  /** A store under a prefix of its own, so that no test sees another's objects. */
  function makeStore(overrides: Parameters<typeof storeConfigFor>[1] = {}): { store: S3ImageStore; prefix: string } {
    const prefix = `t-${randomUUID().slice(0, 8)}`;
    const stagingDir = path.join(server.stagingDir, prefix);
    const store = new S3ImageStore(storeConfigFor(server, { prefix, stagingDir, ...overrides }));
    stores.push(store);
    return { store, prefix };
  }

  before(async () => {
    server = await startS3Server();
    // the SDK's default chain reads the credentials from this process's environment
    restoreEnv = setEnv(server.env);
  });

  afterEach(() => {
    for (const store of stores.splice(0)) store.destroy();
  });

  after(async () => {
    restoreEnv();
    await server?.close();
  });

  imageStoreContract('S3 bucket', async () => {
    const { store, prefix } = makeStore();
    return {
      store,
      keys: async () =>
        (await server.objectKeys())
          .filter((key) => key.startsWith(`${prefix}/`))
          .map((key) => key.slice(prefix.length + 1)),
      putFromOutside: async (key, data) => {
        const put = await store.presign('PUT', key, 60, 'image/png');
        const reply = await fetch(put.url, { method: 'PUT', headers: put.headers, body: data });
        expect(reply.status).to.equal(200);
      },
      cleanup: async () => store.destroy(),
    };
  });

  it('keys its objects <prefix>/<key>, and works with no prefix too', async () => {
    const { store, prefix } = makeStore();
    await store.put(memory('x'), 'w1/a.png', 'image/png');
    expect(await server.objectKeys()).to.include(`${prefix}/w1/a.png`);
    expect(store.where).to.equal(`s3://${server.bucket}/${prefix} at ${server.endpoint}`);
    const bare = makeStore({ prefix: '' }).store;
    await bare.put(memory('y'), `${prefix}-bare/b.png`, 'image/png');
    expect(await server.objectKeys()).to.include(`${prefix}-bare/b.png`);
    expect((await bare.inspect(`${prefix}/w1/a.png`, 0))?.size).to.equal(1);
    await bare.removeFolder(`${prefix}-bare`);
  });

  it('refuses a prefix with a slash at either end', () => {
    expect(() => makeStore({ prefix: '/images' })).to.throw(ImageStoreConfigError, /prefix/);
    expect(() => makeStore({ prefix: 'images/' })).to.throw(ImageStoreConfigError, /prefix/);
    expect(() => makeStore({ prefix: 'a//b' })).to.throw(ImageStoreConfigError, /prefix/);
  });

  it('prepare and removeFolder go through more objects than one listing page holds', async () => {
    const { store, prefix } = makeStore();
    const keys = Array.from({ length: 1020 }, (_unused, index) => `w1/${String(index).padStart(5, '0')}.png`);
    for (let start = 0; start < keys.length; start += 100) {
      await Promise.all(keys.slice(start, start + 100).map((key) => store.put(memory('p'), key, 'image/png')));
    }
    await store.put(memory('q'), 'w2/keep.png', 'image/png');
    const ours = async () => (await server.objectKeys()).filter((key) => key.startsWith(`${prefix}/`));
    // one in a hundred unreferenced: 11 go, from two listing pages
    const referenced = new Set([...keys.filter((_key, index) => index % 100 !== 7), 'w2/keep.png']);
    expect(await store.prepare(referenced, new Set(['w1', 'w2']), 0)).to.equal(11);
    expect(await ours()).to.have.length(1010);
    // the other 1,009: two pages again
    await store.removeFolder('w1');
    expect(await ours()).to.deep.equal([`${prefix}/w2/keep.png`]);
  });

  describe('presigned URLs', () => {
    it('a GET works with plain fetch, and is good for that key, that long, GetObject only', async () => {
      const { store, prefix } = makeStore();
      const data = randomBytes(2048);
      await store.put(memory(data), 'w1/get.png', 'image/png');
      const before = Date.now();
      const signed = await store.presign('GET', 'w1/get.png', 120);
      expect(signed.method).to.equal('GET');
      expect(signed.headers).to.deep.equal({});
      expect(signed.expiresAt).to.be.within(before + 119_000, Date.now() + 120_000);
      const url = new URL(signed.url);
      expect(url.origin).to.equal(server.endpoint);
      expect(url.pathname).to.equal(`/${server.bucket}/${prefix}/w1/get.png`);
      expect(url.searchParams.get('X-Amz-Expires')).to.equal('120');
      expect(url.searchParams.get('x-id')).to.equal('GetObject');
      expect(url.searchParams.get('X-Amz-SignedHeaders')).to.equal('host');
      const response = await fetch(signed.url);
      expect(response.status).to.equal(200);
      expect(Buffer.from(await response.arrayBuffer()).equals(data)).to.equal(true);
    });

    it('a PUT works with plain fetch and its headers, and signs the content type', async () => {
      const { store, prefix } = makeStore();
      const data = randomBytes(4096);
      const signed = await store.presign('PUT', 'w1/put.webp', 300, 'image/webp');
      expect(signed.method).to.equal('PUT');
      expect(signed.headers).to.deep.equal({ 'content-type': 'image/webp' });
      const url = new URL(signed.url);
      expect(url.pathname).to.equal(`/${server.bucket}/${prefix}/w1/put.webp`);
      expect(url.searchParams.get('X-Amz-Expires')).to.equal('300');
      expect(url.searchParams.get('x-id')).to.equal('PutObject');
      expect(url.searchParams.get('X-Amz-SignedHeaders')?.split(';')).to.include('content-type');
      const response = await fetch(signed.url, { method: 'PUT', headers: signed.headers, body: data });
      expect(response.status).to.equal(200);
      const opened = await store.open('w1/put.webp');
      expect((await readAll(opened!.body)).equals(data)).to.equal(true);
      // stored with the type it was signed for
      const read = await fetch((await store.presign('GET', 'w1/put.webp', 60)).url);
      expect(read.headers.get('content-type')).to.equal('image/webp');
    });

    it('a PUT bound to a length signs it: plain fetch of exactly that body works', async () => {
      const { store } = makeStore();
      const data = randomBytes(3000);
      const signed = await store.presign('PUT', 'w1/bound.png', 60, 'image/png', data.length);
      // the client's own Content-Length is what is checked against the signed one: not one of the headers to copy
      expect(signed.headers).to.deep.equal({ 'content-type': 'image/png' });
      const url = new URL(signed.url);
      expect(url.searchParams.get('X-Amz-SignedHeaders')?.split(';')).to.include.members([
        'content-length',
        'content-type',
      ]);
      const response = await fetch(signed.url, { method: 'PUT', headers: signed.headers, body: data });
      expect(response.status).to.equal(200);
      expect((await store.inspect('w1/bound.png', 0))?.size).to.equal(data.length);
      await rejection(store.presign('GET', 'w1/bound.png', 60, undefined, 10)).then((error) =>
        expect(String(error)).to.match(/only a presigned PUT is bound to a length/),
      );
      await rejection(store.presign('PUT', 'w1/bound.png', 60, 'image/png', 1.5)).then((error) =>
        expect(String(error)).to.match(/a whole number of bytes/),
      );
    });

    it('expiry is kept between 1 s and 7 days', async () => {
      const { store } = makeStore();
      const long = new URL((await store.presign('GET', 'w1/x.png', 30 * 86_400)).url);
      expect(long.searchParams.get('X-Amz-Expires')).to.equal(String(7 * 86_400));
      const short = new URL((await store.presign('GET', 'w1/x.png', 0)).url);
      expect(short.searchParams.get('X-Amz-Expires')).to.equal('1');
      await rejection(store.presign('PUT', 'w1/x.png', 60)).then((error) =>
        expect(String(error)).to.match(/Content-Type/),
      );
    });

    /** Origin and path, and the query's parameters sorted: two URLs alike this way are the same request. */
    function canonical(url: string): string[] {
      const parsed = new URL(url);
      return [parsed.origin + parsed.pathname, ...[...parsed.searchParams].map((pair) => pair.join('=')).sort()];
    }

    async function expectSdkUrls(client: S3Client, presigner: ObjectPresigner): Promise<void> {
      const signingDate = new Date('2030-01-02T03:04:05Z');
      for (const key of ['p/w1/a.png', 'p/w 1/ü+%.jpeg', "p/x/(it's)*!~.png"]) {
        const get = await presigner.presign({ method: 'GET', key, expiresIn: 900, signingDate });
        const sdkGet = await getSignedUrl(client, new GetObjectCommand({ Bucket: server.bucket, Key: key }), {
          expiresIn: 900,
          signingDate,
        });
        expect(canonical(get)).to.deep.equal(canonical(sdkGet));
        const put = await presigner.presign({ method: 'PUT', key, expiresIn: 60, mime: 'image/png', signingDate });
        const sdkPut = await getSignedUrl(
          client,
          new PutObjectCommand({ Bucket: server.bucket, Key: key, ContentType: 'image/png' }),
          { expiresIn: 60, signingDate, signableHeaders: new Set(['content-type']) },
        );
        expect(canonical(put)).to.deep.equal(canonical(sdkPut));
        const bound = { method: 'PUT', key, expiresIn: 60, mime: 'image/png', bytes: 48_213, signingDate } as const;
        const sdkBound = await getSignedUrl(
          client,
          new PutObjectCommand({ Bucket: server.bucket, Key: key, ContentType: 'image/png', ContentLength: 48_213 }),
          { expiresIn: 60, signingDate, signableHeaders: new Set(['content-type', 'content-length']) },
        );
        expect(canonical(await presigner.presign(bound))).to.deep.equal(canonical(sdkBound));
        expect(canonical(await presigner.presign(bound))).to.not.deep.equal(canonical(sdkPut));
      }
    }

    it("are signed on the direct path, exactly as the SDK's getSignedUrl signs them", async () => {
      const client = createS3Client(storeConfigFor(server));
      try {
        const presigner = new ObjectPresigner(client, server.bucket);
        expect(await presigner.direct()).to.equal(true);
        await expectSdkUrls(client, presigner);
      } finally {
        client.destroy();
      }
    });

    it('come from getSignedUrl when the direct path would sign otherwise', async () => {
      // the SDK's default checksum mode adds a parameter to a GET the direct path does not make
      const client = new S3Client({ endpoint: server.endpoint, region: 'us-east-1', forcePathStyle: true });
      try {
        const presigner = new ObjectPresigner(client, server.bucket);
        expect(await presigner.direct()).to.equal(false);
        await expectSdkUrls(client, presigner);
      } finally {
        client.destroy();
      }
    });
  });

  describe('check()', () => {
    it('names the bucket when there is no such bucket', async () => {
      const { store } = makeStore({ bucket: 'no-such-bucket' });
      const error = await rejection(store.check());
      expect(error).to.be.instanceOf(ImageStoreConfigError);
      expect((error as Error).message).to.match(/no bucket "no-such-bucket"/);
    });

    it('names the endpoint when it is unreachable', async () => {
      const closed = `http://127.0.0.1:${await freePorts()}`;
      const { store } = makeStore({ endpoint: closed });
      const started = Date.now();
      const error = await rejection(store.check());
      expect(Date.now() - started).to.be.below(10_000);
      expect(error).to.be.instanceOf(ImageStoreConfigError);
      expect((error as Error).message).to.include(`cannot reach the S3 endpoint ${closed}`);
    });

    it('says access was denied for credentials the store does not know', async () => {
      const restore = setEnv({ AWS_ACCESS_KEY_ID: 'NOT-A-KEY' });
      try {
        const { store } = makeStore();
        const error = await rejection(store.check());
        expect(error).to.be.instanceOf(ImageStoreConfigError);
        expect((error as Error).message).to.match(/denied \(InvalidAccessKeyId\)/);
      } finally {
        restore();
      }
    });

    it('says how to give credentials when there are none', async () => {
      const nowhere = path.join(tmpdir(), `dpip-no-aws-${randomUUID()}`);
      const restore = setEnv({
        AWS_ACCESS_KEY_ID: undefined,
        AWS_SECRET_ACCESS_KEY: undefined,
        AWS_SESSION_TOKEN: undefined,
        AWS_PROFILE: undefined,
        AWS_WEB_IDENTITY_TOKEN_FILE: undefined,
        AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: undefined,
        AWS_CONTAINER_CREDENTIALS_FULL_URI: undefined,
        AWS_SHARED_CREDENTIALS_FILE: path.join(nowhere, 'credentials'),
        AWS_CONFIG_FILE: path.join(nowhere, 'config'),
        AWS_EC2_METADATA_DISABLED: 'true',
      });
      try {
        const { store } = makeStore();
        const error = await rejection(store.check());
        expect(error).to.be.instanceOf(ImageStoreConfigError);
        expect((error as Error).message).to.match(/no S3 credentials found: set AWS_ACCESS_KEY_ID/);
      } finally {
        restore();
      }
    });
  });

  describe('an outage of the store', () => {
    afterEach(async () => {
      await server.start();
    });

    async function unavailableWithin(ms: number, call: Promise<unknown>): Promise<void> {
      const started = Date.now();
      const error = await rejection(call);
      expect(error, String(error)).to.be.instanceOf(ImageStoreUnavailable);
      expect((error as ImageStoreUnavailable).kind).to.equal('unavailable');
      expect(Date.now() - started).to.be.below(ms);
    }

    it('fails put, open, inspect and removals with ImageStoreUnavailable in seconds, and works after', async () => {
      const { store } = makeStore();
      await store.put(memory('before'), 'w1/a.png', 'image/png');
      await server.stop();
      await unavailableWithin(5_000, store.put(memory('during'), 'w1/b.png', 'image/png'));
      const staged = store.stagingPath();
      await mkdir(path.dirname(staged), { recursive: true });
      await writeFile(staged, randomBytes(100_000));
      await unavailableWithin(5_000, store.put({ kind: 'staged', path: staged }, 'w1/c.png', 'image/png'));
      expect(await exists(staged)).to.equal(false);
      await unavailableWithin(5_000, store.open('w1/a.png'));
      await unavailableWithin(5_000, store.inspect('w1/a.png', 16));
      await unavailableWithin(5_000, store.inspect('w1/a.png', 0));
      await unavailableWithin(5_000, store.remove('w1/a.png'));
      await unavailableWithin(5_000, store.removeFolder('w1'));
      await unavailableWithin(5_000, store.prepare(new Set(), new Set(), 0));
      // signing needs no store
      expect((await store.presign('GET', 'w1/a.png', 60)).url).to.include('/w1/a.png?');

      await server.start();
      const opened = await store.open('w1/a.png');
      expect((await readAll(opened!.body)).toString()).to.equal('before');
      await store.put(memory('after'), 'w1/b.png', 'image/png');
      expect((await store.inspect('w1/b.png', 16))?.head.toString()).to.equal('after');
    });
  });
});
