// s3rver for one test server: `node s3-server-child.js <port> <directory> <bucket> [cors]`. Prints
// "listening <port>" once it serves; exits when killed, and by itself once its parent is gone. With
// `cors`, the bucket answers browsers of any origin that PUT or GET with a Content-Type header.
import S3rver from 's3rver';

/** What a bucket needs for a browser page of another origin to PUT to its presigned URLs (and GET them). */
const CORS_RULE =
  '<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>PUT</AllowedMethod>' +
  '<AllowedMethod>GET</AllowedMethod><AllowedHeader>content-type</AllowedHeader>' +
  '<MaxAgeSeconds>600</MaxAgeSeconds></CORSRule></CORSConfiguration>';

const [port, directory, bucket, cors] = process.argv.slice(2);
if (!port || !directory || !bucket || (cors !== undefined && cors !== 'cors')) {
  process.stderr.write('usage: s3-server-child <port> <directory> <bucket> [cors]\n');
  process.exit(2);
}

const server = new S3rver({
  address: '127.0.0.1',
  port: Number(port),
  directory,
  silent: true,
  // made if missing; a restart on the same directory finds its bucket and objects again
  configureBuckets: [{ name: bucket, configs: cors ? [CORS_RULE] : [] }],
});
await server.run();
process.stdout.write(`listening ${port}\n`);

// a test process killed outright cannot stop its children: an orphan stops itself
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) process.exit(0);
}, 500);
process.on('SIGTERM', () => process.exit(0));
