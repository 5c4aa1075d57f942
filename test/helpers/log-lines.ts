import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';

/** A JSON logger at info level whose lines are parsed and pushed onto `lines`, for a test to read. */
export function collectingLogger<T>(lines: T[]): Logger {
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) lines.push(JSON.parse(line) as T);
      done();
    },
  });
  return pino({ level: 'info', base: undefined }, sink);
}
