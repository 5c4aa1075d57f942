import { expect } from 'chai';
import { prettyLine } from '../../common/log-pretty.js';
import { resolveLogFormat } from '../../common/log.js';
import { parseServerArgs } from '../../bin/server-cli.js';
import { parseWorkerArgs } from '../../bin/worker-cli.js';

describe('log output', () => {
  it('is pretty in a terminal and JSON lines elsewhere, unless a format is given', () => {
    expect(resolveLogFormat('auto', true)).to.equal('pretty');
    expect(resolveLogFormat('auto', false)).to.equal('json');
    expect(resolveLogFormat('json', true)).to.equal('json');
    expect(resolveLogFormat('pretty', false)).to.equal('pretty');
  });

  it('takes --log-format on the server and the worker (auto by default)', async () => {
    expect((await parseServerArgs(['--secret', 's'], {})).logFormat).to.equal('auto');
    expect((await parseServerArgs(['--secret', 's', '--log-format', 'json'], {})).logFormat).to.equal('json');
    expect(
      parseWorkerArgs(
        ['--controller', 'localhost:40899', '--worker-name', 'w', '--secret', 's', '--log-format', 'pretty'],
        {},
      ).logFormat,
    ).to.equal('pretty');
  });

  it('prints a record as time, level, name, message and its fields', () => {
    const line = JSON.stringify({
      level: 40,
      time: Date.UTC(2026, 0, 2, 3, 4, 5, 678),
      name: 'dpip',
      msg: 'job failed',
      job_id: 'j1',
      attempts: 2,
      tags: ['a'],
    });
    expect(prettyLine(line, false)).to.equal('03:04:05.678 WARN  dpip: job failed  job_id=j1 attempts=2 tags=["a"]\n');
    expect(prettyLine(line, true)).to.include('\u001b[33mWARN \u001b[0m');
  });

  it('passes through a line that is not a JSON record', () => {
    expect(prettyLine('plain text\n', false)).to.equal('plain text\n');
    expect(prettyLine('[1,2]', false)).to.equal('[1,2]');
  });
});
