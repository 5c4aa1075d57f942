/**
 * Counts a repeated event and says when to log it: the first time and then every `every`th, so a
 * flood (of garbage on the bus, of broken requests, of refused logins) cannot flood the log.
 */
export class LogThrottle {
  count = 0;

  constructor(private readonly every = 1000) {}

  /** Counts one more occurrence; true when this one should be logged. */
  next(): boolean {
    this.count += 1;
    return this.count === 1 || this.count % this.every === 0;
  }
}
