// What the worker makes of an assignment's chain: the chain it runs, and the memory it expects it to take.
import { expect } from 'chai';
import { chainOfFilter } from '../../common/operations/index.js';
import type { Assignment } from '../../common/protocol.js';
import { chainOf } from '../../worker/job-runner.js';
import { JOB_BASE_BYTES, JOB_BYTES_PER_PIXEL, jobPeakBytes } from '../../worker/memory-budget.js';
import { chain } from '../helpers/chains.js';

function assignment(fields: Partial<Assignment>): Assignment {
  return { token: 't', job_id: 'j', lease_id: 'l', image_id: 'i', workload_id: 'w', filter: 'blur', ...fields };
}

describe('worker: the chain of an assignment', () => {
  it("runs the assignment's chain, or else its course filter's; nothing for a filter it does not have", () => {
    const steps = chain([{ op: 'thumbnail', size: 32 }]);
    expect(chainOf(assignment({ operations: steps }))).to.deep.equal(steps);
    expect(chainOf(assignment({}))).to.deep.equal(chainOfFilter('blur'));
    expect(chainOf(assignment({ filter: 'sepia' }))).to.equal(null);
  });

  it('expects the memory of the largest image the chain makes', () => {
    const perPixel = JOB_BYTES_PER_PIXEL.jimp;
    const original = JOB_BASE_BYTES + 1000 * 800 * perPixel;
    expect(jobPeakBytes('jimp', 1000, 800)).to.equal(original);
    expect(jobPeakBytes('jimp', 1000, 800, chainOfFilter('grayscale'))).to.equal(original);
    // smaller steps: the original is the peak
    expect(
      jobPeakBytes(
        'jimp',
        1000,
        800,
        chain([
          { op: 'thumbnail', size: 100 },
          { op: 'rotate', angle: 90 },
        ]),
      ),
    ).to.equal(original);
    // an enlargement on the way counts, even when a later step shrinks the image again
    const enlarging = chain([
      { op: 'resize', width: 4000, enlarge: true },
      { op: 'thumbnail', size: 64 },
    ]);
    expect(jobPeakBytes('sharp', 1000, 800, enlarging)).to.equal(
      JOB_BASE_BYTES + 4000 * 3200 * JOB_BYTES_PER_PIXEL.sharp,
    );
    // a chain that does not fit the header's size (say, a crop that fits only once EXIF turns the image):
    // the original's size stands
    expect(jobPeakBytes('jimp', 1000, 800, chain([{ op: 'crop', left: 0, top: 0, width: 900, height: 950 }]))).to.equal(
      original,
    );
    expect(jobPeakBytes('jimp', undefined, undefined, enlarging)).to.equal(0);
  });
});
