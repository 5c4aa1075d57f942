// The dashboard in a real headless Chromium (Debian's, driven by playwright-core) against a real
// server and a real worker process on loopback: log in, create a workload, drop five images (with a
// file that is not an image and one that does not decode), watch them complete without a reload, retry
// the failed one, open a before/after pair, download the ZIP, log out; and the live updates coming
// back by themselves after a server restart. A screenshot taken while the workload runs is kept in
// test-results/dashboard.png.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startServer, type Server } from '../../bin/server.js';
import { createLogger } from '../../common/log.js';
import { makeTestImage, poisonPng, sniffMime } from '../helpers/images.js';
import { killAll, waitFor } from '../helpers/processes.js';
import { TestClient } from '../helpers/api.js';
import { liveWorker, pickServerPorts, spawnServerOn } from '../helpers/restart.js';
import { makeDirs, spawnWorker, testServerConfig, type TestDirs } from '../helpers/system.js';
import { readZip } from '../helpers/zip.js';

const CHROMIUM = '/usr/bin/chromium';
const INSTALLER = fileURLToPath(new URL('../../../scripts/install-chromium.sh', import.meta.url));
const RESULTS_DIR = fileURLToPath(new URL('../../../test-results/', import.meta.url));
const WIDTH = 480;
const HEIGHT = 360;

/** Chromium from the system's packages: installed when missing and this process may (root). */
function ensureChromium(): boolean {
  if (existsSync(CHROMIUM)) return true;
  if (process.getuid?.() !== 0) return false;
  execFileSync('bash', [INSTALLER], { stdio: 'inherit', timeout: 600_000 });
  return existsSync(CHROMIUM);
}

interface DroppedFile {
  name: string;
  type: string;
  base64: string;
}

// The code run inside the page is given as text: this project's TypeScript is compiled for Node, without
// the browser's types.

/** Drops the files on the element as a user's drag and drop would (a DataTransfer made in the page). */
async function drop(page: Page, selector: string, files: DroppedFile[]): Promise<void> {
  await page.evaluate(`(() => {
    const transfer = new DataTransfer();
    for (const file of ${JSON.stringify(files)}) {
      const data = Uint8Array.from(atob(file.base64), (char) => char.charCodeAt(0));
      transfer.items.add(new File([data], file.name, { type: file.type }));
    }
    const target = document.querySelector(${JSON.stringify(selector)});
    target.dispatchEvent(new DragEvent('dragover', { dataTransfer: transfer, bubbles: true, cancelable: true }));
    target.dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true }));
  })()`);
}

/**
 * Evaluates the expression in the page until it is truthy. (Playwright's waitForFunction would eval it
 * inside the page, which the dashboard's Content-Security-Policy forbids, and rightly so.)
 */
async function pageValue<T>(page: Page, expression: string, what: string, timeoutMs = 60_000): Promise<T> {
  return waitFor(what, async () => (await page.evaluate(expression)) as T, timeoutMs, 50);
}

/** Waits until `count` elements match the selector. */
async function waitForCount(page: Page, selector: string, count: number, timeoutMs = 60_000): Promise<void> {
  await pageValue(
    page,
    `document.querySelectorAll(${JSON.stringify(selector)}).length === ${count}`,
    `${count} of ${selector}`,
    timeoutMs,
  );
}

/** The natural size of an image, once it has loaded. */
async function naturalSize(page: Page, selector: string): Promise<number[]> {
  return pageValue<number[]>(
    page,
    `(() => {
      const image = document.querySelector(${JSON.stringify(selector)});
      return image && image.complete && image.naturalWidth > 0 ? [image.naturalWidth, image.naturalHeight] : null;
    })()`,
    `the image ${selector} to load`,
  );
}

describe('dashboard in headless Chromium', function () {
  this.timeout(240_000);
  let dirs: TestDirs | null = null;
  let server: Server | null = null;
  let browser: Browser | null = null;
  let url = '';

  before(async function () {
    if (!ensureChromium()) {
      // eslint-disable-next-line no-console
      console.warn(
        `    ${CHROMIUM} is missing and this user cannot install it: run scripts/install-chromium.sh as root`,
      );
      this.skip();
    }
    dirs = await makeDirs();
    const config = await testServerConfig(dirs);
    server = await startServer(config, createLogger('test-server', 'silent'));
    url = `http://127.0.0.1:${server.api.port}`;
    // one slot on the jimp engine: the five images take a few seconds, long enough to watch them run
    spawnWorker({ controllerPort: config.controller.port, name: 'browser-worker', engine: 'jimp', slots: 1 });
    const s = server;
    await waitFor('the worker to register', async () => liveWorker(s, 'browser-worker')?.state === 'alive', 30_000, 20);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-dev-shm-usage'],
    });
  });

  after(async () => {
    try {
      await browser?.close();
    } finally {
      await killAll();
      await server?.close();
      await dirs?.remove();
    }
  });

  it('logs in, runs a dropped batch live, compares a pair, downloads the ZIP and logs out', async () => {
    const context = await browser!.newContext({ viewport: { width: 1360, height: 900 }, acceptDownloads: true });
    const page = await context.newPage();
    const problems: string[] = [];
    const requested: string[] = [];
    page.on('request', (request) => requested.push(request.url()));
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('console', (message) => {
      // refused uploads are answered 415 on purpose; anything else logged as an error is a problem
      if (message.type() === 'error' && !/status of 415/.test(message.text()))
        problems.push(`console: ${message.text()}`);
    });
    try {
      await page.goto(url);
      await page.getByTestId('username').fill('alice');
      await page.getByTestId('password').fill('wrong-password');
      await page.getByTestId('login').click();
      await page.getByTestId('login-message').filter({ hasText: 'wrong username or password' }).waitFor();
      await page.getByTestId('password').fill('alice-pw');
      await page.getByTestId('login').click();
      await page.getByTestId('user').filter({ hasText: 'alice' }).waitFor();
      // the wrong password was answered 401, as it should be: from here on, nothing may fail
      problems.length = 0;

      // the workers panel fills from the live stream, with a chart
      await page.locator('[data-testid="worker"][data-name="browser-worker"] svg.chart polyline.cpu').waitFor();
      await page.getByTestId('live').filter({ hasText: 'live' }).waitFor();

      const name = `browser-${Date.now().toString(36)}`;
      await page.getByTestId('workload-name').fill(name);
      await page.getByTestId('workload-filter').selectOption('blur');
      await page.getByTestId('create-workload').click();
      await page.getByTestId('workload-page').waitFor();
      expect(await page.locator('.head h1').textContent()).to.equal(name);
      // a marker that a reload would lose
      await page.evaluate('window.marker = 42');

      const images = await Promise.all(
        [1, 2, 3, 4, 5].map((seed) => makeTestImage(WIDTH, HEIGHT, 'image/png', 600 + seed)),
      );
      const files: DroppedFile[] = images.map((data, index) => ({
        name: `photo-${index + 1}.png`,
        type: 'image/png',
        base64: data.toString('base64'),
      }));
      files.push({ name: 'notes.txt', type: 'text/plain', base64: Buffer.from('not an image').toString('base64') });
      // a PNG whose header is fine and whose body is not: accepted, then its job fails
      files.push({
        name: 'broken.png',
        type: 'image/png',
        base64: (await poisonPng(WIDTH, HEIGHT)).toString('base64'),
      });
      await drop(page, '[data-testid="dropzone"]', files);

      // per-file progress and the API's answer for the file that is not an image
      await waitForCount(page, '[data-testid="upload-row"][data-state="done"]', 6);
      await waitForCount(page, '[data-testid="upload-row"][data-state="failed"]', 1);
      const refused = page.locator('[data-testid="upload-row"][data-state="failed"]');
      expect(await refused.textContent())
        .to.contain('notes.txt')
        .and.to.contain('not a PNG or JPEG');
      expect(await page.getByTestId('upload-summary').textContent()).to.match(/^6 uploaded, 1 refused/);

      // the gallery shows the six while they run; a screenshot of the running workload
      await waitForCount(page, '[data-testid="tile"]', 6, 30_000);
      await mkdir(RESULTS_DIR, { recursive: true });
      await page.screenshot({ path: `${RESULTS_DIR}dashboard.png`, fullPage: true });

      // all five complete, with no reload: the live stream moves the progress bar
      await page.locator('[data-testid="progress"][data-done="5"]').waitFor({ timeout: 120_000 });
      await waitForCount(page, '[data-testid="tile"][data-state="done"]', 5, 30_000);
      await waitForCount(page, '[data-testid="tile"][data-state="failed"]', 1, 60_000);
      expect(await page.evaluate('window.marker')).to.equal(42);
      expect(await page.getByTestId('status').first().textContent()).to.equal('completed with failures');
      expect(await page.getByTestId('image-error').textContent()).to.match(/decode/i);

      // the failed image's Retry requeues it; undecodable, it fails again
      const [retried] = await Promise.all([
        page.waitForResponse((response) => response.url().endsWith('/retry') && response.request().method() === 'POST'),
        page.getByTestId('retry-image').click(),
      ]);
      expect(retried.status()).to.equal(200);
      expect(((await retried.json()) as { retried_jobs: number }).retried_jobs).to.equal(1);
      await waitForCount(page, '[data-testid="tile"][data-state="failed"]', 1, 60_000);
      await page.getByTestId('status').filter({ hasText: 'completed with failures' }).waitFor();

      // a before/after pair, large
      await page.getByTestId('tile').first().click();
      await page.getByTestId('lightbox').waitFor();
      expect(await naturalSize(page, '[data-testid="lightbox-original"]')).to.deep.equal([WIDTH, HEIGHT]);
      expect(await naturalSize(page, '[data-testid="lightbox-filtered"]')).to.deep.equal([WIDTH, HEIGHT]);
      await page.keyboard.press('Escape');
      await page.getByTestId('lightbox').waitFor({ state: 'detached' });

      // "download all": a ZIP of the five filtered images
      const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('download-all').click()]);
      expect(download.suggestedFilename()).to.equal(`${name}.zip`);
      requested.push(download.url());
      const entries = readZip(await readFile(await download.path()));
      expect(entries).to.have.length(5);
      for (const entry of entries) {
        expect(entry.name).to.match(new RegExp(`^${name}/[0-9a-f-]{36}\\.filtered\\.png$`));
        expect(sniffMime(entry.data)).to.equal('image/png');
      }

      // the list shows it completed; then log out
      await page.locator('a.back').click();
      await page
        .locator(`[data-testid="workload-link"]`)
        .filter({ hasText: name })
        .locator('[data-testid="status"]')
        .filter({ hasText: 'completed with failures' })
        .waitFor();
      // the session's own token never went into a URL: the stream and the ZIP had short-lived ones
      const session = JSON.parse((await page.evaluate("localStorage.getItem('dpip.session')")) as string) as {
        token: string;
      };
      const withToken = requested.filter((address) => new URL(address).searchParams.has('token'));
      expect(withToken.some((address) => new URL(address).pathname === '/events')).to.equal(true);
      expect(withToken.some((address) => new URL(address).pathname.endsWith('/archive'))).to.equal(true);
      for (const address of requested) expect(address).to.not.include(session.token);

      await page.getByTestId('logout').click();
      await page.getByTestId('login').waitFor();
      expect(problems).to.deep.equal([]);
    } finally {
      await context.close();
    }
  });

  it('reconnects its live updates by itself when the server restarts, and catches up', async () => {
    const restartDirs = await makeDirs();
    const context = await browser!.newContext({ viewport: { width: 1100, height: 800 } });
    try {
      const ports = await pickServerPorts();
      let running = await spawnServerOn(restartDirs, ports);
      const page = await context.newPage();
      await page.goto(running.url);
      await page.getByTestId('username').fill('bob');
      await page.getByTestId('password').fill('bob-pass');
      await page.getByTestId('login').click();
      await page.getByTestId('live').filter({ hasText: 'live' }).waitFor();

      await running.process.kill('SIGKILL');
      await page.getByTestId('live').filter({ hasText: 'reconnecting' }).waitFor();
      running = await spawnServerOn(restartDirs, ports);

      // made while the page was cut off, and shown once it is back (the token survived the restart)
      const client = await TestClient.login(running.url, 'bob', 'bob-pass');
      const made = await client.createWorkload({ workload_name: `after-restart-${Date.now().toString(36)}` });
      await page.getByTestId('live').filter({ hasText: 'live' }).waitFor({ timeout: 30_000 });
      await page.locator(`[data-testid="workload-link"][data-id="${made.workload_id}"]`).waitFor({ timeout: 30_000 });
      expect(await page.getByTestId('user').textContent()).to.equal('bob');
      await running.process.kill('SIGTERM');
    } finally {
      await context.close();
      await restartDirs.remove();
    }
  });
});
