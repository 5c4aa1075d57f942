// The server checks its image store at start and refuses to start, saying what is wrong, when it cannot
// write, read and delete there. Real server processes against a real S3-protocol server.
import { expect } from 'chai';
import { freePorts } from '../helpers/ports.js';
import { killAll } from '../helpers/processes.js';
import { setEnv, startS3Server, type TestS3Server } from '../helpers/s3-server.js';
import { launchServer, makeDirs, type TestDirs } from '../helpers/system.js';

describe('the image store checked at start', function () {
  this.timeout(60_000);
  let dirs: TestDirs;
  let s3: TestS3Server;
  let restoreEnv: () => void = () => undefined;

  before(async () => {
    dirs = await makeDirs();
    s3 = await startS3Server();
    restoreEnv = setEnv(s3.env);
  });

  after(async () => {
    await killAll();
    await s3?.close();
    await dirs?.remove();
    restoreEnv();
  });

  /** Starts the server with these flags and waits for it to give up; its exit code and what it printed. */
  async function refusal(flags: string[]): Promise<{ code: number | null; output: string }> {
    const server = await launchServer(dirs, flags);
    const { code } = await server.process.exited;
    return { code, output: server.process.output() };
  }

  it('a missing bucket: it says which, and exits', async () => {
    const { code, output } = await refusal([
      '--image-store',
      's3',
      '--s3-bucket',
      'no-such-bucket',
      '--s3-endpoint',
      s3.endpoint,
      '--s3-force-path-style',
    ]);
    expect(code).to.equal(1);
    expect(output).to.match(/no bucket "no-such-bucket"/);
  });

  it('an endpoint nobody answers: it names the endpoint, and exits', async () => {
    const endpoint = `http://127.0.0.1:${await freePorts()}`;
    const { code, output } = await refusal([
      '--image-store',
      's3',
      '--s3-bucket',
      s3.bucket,
      '--s3-endpoint',
      endpoint,
      '--s3-force-path-style',
    ]);
    expect(code).to.equal(1);
    expect(output).to.include(endpoint);
  });

  it('no credentials: it says how to give them, and exits', async () => {
    const restore = setEnv({
      AWS_ACCESS_KEY_ID: undefined,
      AWS_SECRET_ACCESS_KEY: undefined,
      AWS_SHARED_CREDENTIALS_FILE: `${dirs.root}/no-credentials`,
      AWS_CONFIG_FILE: `${dirs.root}/no-config`,
      // nor an instance role: the SDK would otherwise ask the instance metadata address
      AWS_EC2_METADATA_DISABLED: 'true',
    });
    let outcome: { code: number | null; output: string };
    try {
      outcome = await refusal(['--image-store', 's3', '--s3-bucket', s3.bucket, '--s3-endpoint', s3.endpoint]);
    } finally {
      restore();
    }
    const { code, output } = outcome;
    expect(code).to.equal(1);
    expect(output).to.match(/AWS_ACCESS_KEY_ID/);
  });

  it('--image-store s3 without a bucket is a usage error', async () => {
    const { code, output } = await refusal(['--image-store', 's3']);
    expect(code).to.equal(2);
    expect(output).to.match(/--s3-bucket/);
  });
});
