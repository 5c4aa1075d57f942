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

// s3rver writes an object through a stream with no 'error' listener, after making its folder: when a deletion of
// the folder's last object removes the folder in between (a put racing a folder's removal, as the image store
// contract makes happen), the stream's ENOENT is an uncaught exception that ends the process, and every later test
// sees "connection refused". Real object stores have no folders to lose; here that one error fails that one put
// (its metadata cannot be written either) and the server goes on. Anything else still ends it.
process.on('uncaughtException', (error: NodeJS.ErrnoException) => {
  if (
    error.code === 'ENOENT' &&
    error.syscall === 'open' &&
    typeof error.path === 'string' &&
    error.path.startsWith(directory)
  ) {
    process.stderr.write(`s3rver: an object's folder was removed while it was written: ${error.path}\n`);
    return;
  }
  process.stderr.write(`${error.stack ?? String(error)}\n`);
  process.exit(1);
});

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
