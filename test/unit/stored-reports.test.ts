import { expect } from 'chai';
import type { LeaseRef } from '../../common/protocol.js';
import { StoredReports } from '../../worker/stored-reports.js';

/** A stand-in for the API: each report waits until the test answers it. */
function standInApi() {
  const sent: Array<{ jobs: string[]; answer: (answers: Array<string | Error> | Error) => void }> = [];
  const send = (results: readonly LeaseRef[]) =>
    new Promise<Array<string | Error>>((resolve, reject) => {
      sent.push({
        jobs: results.map((result) => result.job_id),
        answer: (answers) => (answers instanceof Error ? reject(answers) : resolve(answers)),
      });
    });
  return { sent, send };
}

const ref = (jobId: string): LeaseRef => ({ job_id: jobId, lease_id: `lease-${jobId}` });
const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('stored results reported together', () => {
  it('sends the first at once, and what finishes meanwhile in one report when it is answered', async () => {
    const { sent, send } = standInApi();
    const reports = new StoredReports(send);
    const never = new AbortController().signal;
    const first = reports.report(ref('a'), never);
    const later = ['b', 'c', 'd'].map((id) => reports.report(ref(id), never));
    await tick();
    expect(sent.map((report) => report.jobs)).to.deep.equal([['a']]);
    sent[0]!.answer(['image-a']);
    expect(await first).to.equal('image-a');
    await tick();
    expect(sent.map((report) => report.jobs)).to.deep.equal([['a'], ['b', 'c', 'd']]);
    sent[1]!.answer(['image-b', new Error('409 the lease moved on'), 'image-d']);
    const settled = await Promise.allSettled(later);
    expect(
      settled.map((outcome) => (outcome.status === 'fulfilled' ? outcome.value : String(outcome.reason))),
    ).to.deep.equal(['image-b', 'Error: 409 the lease moved on', 'image-d']);
  });

  it('fails every result of a report that fails whole with its error, and sends the next ones after it', async () => {
    const { sent, send } = standInApi();
    const reports = new StoredReports(send);
    const never = new AbortController().signal;
    const outcome = (report: Promise<string>) =>
      report.then(
        (imageId) => imageId,
        (error: unknown) => String(error),
      );
    const first = outcome(reports.report(ref('a'), never));
    const second = outcome(reports.report(ref('b'), never));
    await tick();
    sent[0]!.answer(new Error('connection refused'));
    await tick();
    const third = reports.report(ref('c'), never);
    await tick();
    sent[1]!.answer(new Error('connection refused'));
    await tick();
    expect(sent.map((report) => report.jobs)).to.deep.equal([['a'], ['b'], ['c']]);
    sent[2]!.answer(['image-c']);
    expect(await Promise.all([first, second])).to.deep.equal([
      'Error: connection refused',
      'Error: connection refused',
    ]);
    expect(await third).to.equal('image-c');
  });

  it('takes out a result whose job aborts while it waits, and sends no more than the most at once', async () => {
    const { sent, send } = standInApi();
    const reports = new StoredReports(send, 2);
    const never = new AbortController().signal;
    const cancel = new AbortController();
    void reports.report(ref('a'), never);
    const cancelled = reports.report(ref('b'), cancel.signal);
    const others = ['c', 'd', 'e'].map((id) => reports.report(ref(id), never));
    cancel.abort(new Error('cancelled by its owner'));
    const outcome = await cancelled.then(
      () => 'kept',
      (error: unknown) => String(error),
    );
    expect(outcome).to.equal('Error: cancelled by its owner');
    sent[0]!.answer(['image-a']);
    await tick();
    sent[1]!.answer(['image-c', 'image-d']);
    await tick();
    sent[2]!.answer(['image-e']);
    expect(await Promise.all(others)).to.deep.equal(['image-c', 'image-d', 'image-e']);
    expect(sent.map((report) => report.jobs)).to.deep.equal([['a'], ['c', 'd'], ['e']]);
  });
});
