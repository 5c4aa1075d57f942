// s3rver for one test server: `node s3-server-child.js <port> <directory> <bucket>`. Prints
// "listening <port>" once it serves; exits when killed, and by itself once its parent is gone.
import S3rver from 's3rver';

const [port, directory, bucket] = process.argv.slice(2);
if (!port || !directory || !bucket) {
  process.stderr.write('usage: s3-server-child <port> <directory> <bucket>\n');
  process.exit(2);
}

const server = new S3rver({
  address: '127.0.0.1',
  port: Number(port),
  directory,
  silent: true,
  // made if missing; a restart on the same directory finds its bucket and objects again
  configureBuckets: [{ name: bucket, configs: [] }],
});
await server.run();
process.stdout.write(`listening ${port}\n`);

// a test process killed outright cannot stop its children: an orphan stops itself
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) process.exit(0);
}, 500);
process.on('SIGTERM', () => process.exit(0));
