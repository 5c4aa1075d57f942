// A local S3-compatible server for trying the S3 image store without MinIO: s3rver on 127.0.0.1:4569
// (or --port), its data in .s3-dev/ of the repository, with a bucket "dpip". `npm run s3:dev`.
import { spawn } from 'node:child_process';
import { createCipheriv } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const BUCKET = 'dpip';

// s3rver encrypts its listing continuation tokens with DES, which OpenSSL 3 leaves out unless its legacy
// provider is loaded: without it, every listing past the first 1,000 keys fails. Run again with it.
try {
  createCipheriv('des', Buffer.alloc(8), Buffer.alloc(8));
} catch {
  const script = fileURLToPath(import.meta.url);
  const child = spawn(process.execPath, ['--openssl-legacy-provider', script, ...process.argv.slice(2)], {
    stdio: 'inherit',
  });
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
  await new Promise(() => {});
}

const { values } = parseArgs({ options: { port: { type: 'string', default: '4569' } } });
const port = Number(values.port);
if (!Number.isInteger(port) || port < 1 || port > 65535) {
  console.error(`--port must be a port number (1-65535), not "${values.port}"`);
  process.exit(2);
}
const directory = fileURLToPath(new URL('../.s3-dev/', import.meta.url));
mkdirSync(directory, { recursive: true });

const { default: S3rver } = await import('s3rver');
const server = new S3rver({
  address: '127.0.0.1',
  port,
  directory,
  silent: true,
  configureBuckets: [{ name: BUCKET, configs: [] }],
});
try {
  await server.run();
} catch (error) {
  console.error(`cannot start s3rver on 127.0.0.1:${port}: ${error.message}`);
  process.exit(1);
}

const endpoint = `http://127.0.0.1:${port}`;
console.log(`s3rver is serving bucket "${BUCKET}" at ${endpoint}, its data in ${directory}`);
console.log('(it checks no signature, but knows one access key: S3RVER, secret S3RVER). Start DPIP on it with:\n');
console.log(
  '  AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_REGION=us-east-1 \\\n' +
    `    npm start -- --image-store s3 --s3-bucket ${BUCKET} --s3-prefix images --s3-endpoint ${endpoint} \\\n` +
    '    --s3-region us-east-1 --s3-force-path-style\n',
);
console.log('Ctrl-C stops it; the objects stay in .s3-dev/ for the next start.');

const stop = () => server.close().finally(() => process.exit(0));
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
