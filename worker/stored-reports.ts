import { MAX_RESULTS_PER_REPORT, type LeaseRef } from '../common/protocol.js';

interface Held {
  ref: LeaseRef;
  resolve: (imageId: string) => void;
  reject: (error: unknown) => void;
  signal: AbortSignal;
  onAbort: () => void;
}

/**
 * Gathers a worker's stored results into reports of several (`POST /results`): one report in flight at a time; a
 * result that comes while one is goes with the next, sent as soon as that one is answered (up to `most` a report).
 * A worker whose jobs are short so sends one request (and the server makes one commit) for what finished during
 * the last answer's round trip, at no added wait. Each result's promise settles with its own answer; a report that
 * fails whole (no answer, an error status) fails each of its results with that error, as their own reports would
 * have.
 */
export class StoredReports {
  private held: Held[] = [];
  private sending = false;

  constructor(
    /** Each result's image id, or the error its own report would have got, in the order sent. */
    private readonly send: (results: readonly LeaseRef[]) => Promise<Array<string | Error>>,
    private readonly most = MAX_RESULTS_PER_REPORT,
  ) {}

  /** This result's image id once its report is answered; rejects with its error, or the signal's reason on abort. */
  report(ref: LeaseRef, signal: AbortSignal): Promise<string> {
    return new Promise((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason);
      const held: Held = {
        ref,
        resolve,
        reject,
        signal,
        onAbort: () => {
          const at = this.held.indexOf(held);
          if (at >= 0) this.held.splice(at, 1);
          reject(signal.reason);
        },
      };
      signal.addEventListener('abort', held.onAbort, { once: true });
      this.held.push(held);
      if (!this.sending) void this.sendHeld();
    });
  }

  private async sendHeld(): Promise<void> {
    this.sending = true;
    while (this.held.length > 0) {
      const batch = this.held.splice(0, this.most);
      for (const held of batch) held.signal.removeEventListener('abort', held.onAbort);
      try {
        const answers = await this.send(batch.map((held) => held.ref));
        for (const [index, held] of batch.entries()) {
          const answer = answers[index];
          if (typeof answer === 'string') held.resolve(answer);
          else held.reject(answer ?? new Error(`no answer for the result of job ${held.ref.job_id}`));
        }
      } catch (error) {
        for (const held of batch) held.reject(error);
      }
    }
    this.sending = false;
  }
}
