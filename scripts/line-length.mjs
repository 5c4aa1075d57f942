// Lists TypeScript lines longer than the formatter's width (the formatter cannot break a long string
// or comment), and fails when there is one.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const LIMIT = 120;
const files = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '*.ts'], { encoding: 'utf8' })
  .split('\n')
  .filter(Boolean);
let long = 0;
for (const file of files) {
  const lines = readFileSync(file, 'utf8').split('\n');
  lines.forEach((line, index) => {
    if (line.length <= LIMIT) return;
    long += 1;
    console.log(`${file}:${index + 1}: ${line.length} characters`);
  });
}
if (long > 0) {
  console.log(`${long} lines are over ${LIMIT} characters`);
  process.exit(1);
}
