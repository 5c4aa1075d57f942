// The dashboard in a real headless Chromium (Debian's, driven by playwright-core) against a real
// server and a real worker process on loopback: log in, create a workload, drop five images (with a
// file that is not an image and one that does not decode), watch them complete without a reload, retry
// the failed one, open a before/after pair, download the ZIP, log out; and the live updates coming
// back by themselves after a server restart; cancelling a running workload and deleting workloads (with
// a confirm step), the list following other tabs and clients live, and the list loaded page by page; a
// chain of operations built step by step (the server's refusal shown on the step it names), shown in the
// workload's views with why it waits; each result's format and size in the gallery. A screenshot taken
// while the workload runs is kept in test-results/dashboard.png. Against a server with object storage:
// originals put straight into the store through upload slots, and through the server when the store
// does not answer the browser.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startServer, type Server } from '../../bin/server.js';
import { createLogger } from '../../common/log.js';
import { makeTestImage, poisonPng, sniffMime } from '../helpers/images.js';
import { killAll, waitFor, type Spawned } from '../helpers/processes.js';
import { parsePrometheus } from '../helpers/prometheus.js';
import { setEnv, startS3Server, storeConfigFor, type TestS3Server } from '../helpers/s3-server.js';
import { TestClient, type WorkloadBody } from '../helpers/api.js';
import { liveWorker, pickServerPorts, spawnServerOn } from '../helpers/restart.js';
import { makeDirs, spawnWorker, testServerConfig, type TestDirs } from '../helpers/system.js';
import { readZip } from '../helpers/zip.js';

const CHROMIUM = '/usr/bin/chromium';
const INSTALLER = fileURLToPath(new URL('../../../scripts/install-chromium.sh', import.meta.url));
const RESULTS_DIR = fileURLToPath(new URL('../../../test-results/', import.meta.url));
const WIDTH = 480;
const HEIGHT = 360;
/** Workloads the dashboard asks for per page of its list. */
const LIST_PAGE = 20;
const UNITS: Record<string, number> = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 };

/** Chromium from the system's packages: installed when missing and this process may (root). */
/** The machine's Chromium, headless (no sandbox: the tests run as root). */
function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
  });
}

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

/** A new user, registered through the API, and logged in there. */
async function newUser(url: string, username: string, password: string): Promise<TestClient> {
  const response = await fetch(`${url}/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password }),
  });
  if (response.status !== 201) throw new Error(`register ${username}: ${response.status} ${await response.text()}`);
  return TestClient.login(url, username, password);
}

/** Opens the dashboard and logs in; resolves once the live updates are on. */
async function signIn(page: Page, url: string, username: string, password: string): Promise<void> {
  await page.goto(url);
  await page.getByTestId('username').fill(username);
  await page.getByTestId('password').fill(password);
  await page.getByTestId('login').click();
  await page.getByTestId('user').filter({ hasText: username }).waitFor();
  await page.getByTestId('live').filter({ hasText: 'live' }).waitFor();
}

/** The ids of the workloads the list shows, in its order. */
async function listedIds(page: Page): Promise<string[]> {
  return (await page.evaluate(
    `[...document.querySelectorAll('[data-testid="workload-item"]')].map((item) => item.dataset.id)`,
  )) as string[];
}

/**
 * The errors the page reports, as they come, but for the console errors that match `expected` (by default
 * 404s: the images of a workload deleted while its page was open).
 */
function watchProblems(page: Page, expected = /status of 404/): string[] {
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error' && !expected.test(message.text())) problems.push(`console: ${message.text()}`);
  });
  return problems;
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
  let worker: Spawned | null = null;

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
    // retention long enough never to delete anything here, so that the views carry expires_at
    config.controller.retentionMs = 7 * 86_400_000;
    server = await startServer(config, createLogger('test-server', 'silent'));
    url = `http://127.0.0.1:${server.api.port}`;
    // one slot on the jimp engine: the five images take a few seconds, long enough to watch them run
    worker = spawnWorker({ controllerPort: config.controller.port, name: 'browser-worker', engine: 'jimp', slots: 1 });
    const s = server;
    await waitFor('the worker to register', async () => liveWorker(s, 'browser-worker')?.state === 'alive', 30_000, 20);
    browser = await launchChromium();
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
    // refused uploads are answered 415 on purpose; anything else logged as an error is a problem
    const problems = watchProblems(page, /status of 415/);
    const requested: string[] = [];
    page.on('request', (request) => requested.push(request.url()));
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
      // under each result, its format and size (a filter keeps both)
      await waitForCount(page, '[data-testid="result-info"]', 5, 30_000);
      const result = page.getByTestId('result-info').first();
      expect(await result.getAttribute('data-format')).to.equal('png');
      expect([await result.getAttribute('data-width'), await result.getAttribute('data-height')]).to.deep.equal([
        String(WIDTH),
        String(HEIGHT),
      ]);
      expect(await result.textContent()).to.match(new RegExp(`^PNG ${WIDTH}×${HEIGHT} · [\\d.]+ (B|KiB|MiB)$`));
      expect(await page.getByTestId('original-info').first().textContent()).to.match(/^PNG 480×360 · /);
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

  it('cancels a running workload on its page, then deletes it from the list after a confirm step', async () => {
    const carol = await newUser(url, 'carol', 'carol-pass');
    const name = `cancel-${Date.now().toString(36)}`;
    const made = await carol.createWorkload({ workload_name: name, filter: 'blur' });
    // forty images on the one-slot worker, held still (SIGSTOP) once it has a first result: the workload
    // is still running when Cancel is pressed, however long the page takes to get there
    const image = await makeTestImage(640, 480, 'image/png', 77);
    const uploads = await Promise.all(
      Array.from({ length: 40 }, (_, index) => carol.upload(made.workload_id, image, `${index}.png`, 'image/png')),
    );
    expect(uploads.map((upload) => upload.status)).to.deep.equal(Array(40).fill(201));
    await waitFor('a first result', async () => (await carol.workload(made.workload_id)).done_jobs > 0, 60_000, 10);
    worker!.child.kill('SIGSTOP');
    const context = await browser!.newContext({ viewport: { width: 1360, height: 900 } });
    const page = await context.newPage();
    const problems = watchProblems(page);
    try {
      await signIn(page, url, 'carol', 'carol-pass');
      await page.locator(`[data-testid="workload-link"][data-id="${made.workload_id}"]`).click();
      await page.getByTestId('workload-page').waitFor();
      await page.locator('.head [data-testid="progress"]:not([data-done="0"])').waitFor({ timeout: 60_000 });

      // Cancel: the unfinished jobs end cancelled, the results so far stay
      const [answer] = await Promise.all([
        page.waitForResponse((response) => response.url().endsWith('/cancel')),
        page.getByTestId('cancel-workload').click(),
      ]);
      worker!.child.kill('SIGCONT');
      expect(answer.status()).to.equal(200);
      const cancelled = (await answer.json()) as WorkloadBody;
      expect(cancelled.status).to.equal('cancelled');
      expect(cancelled.cancelled_jobs, 'it was still running').to.be.above(0);
      expect(cancelled.done_jobs + cancelled.cancelled_jobs).to.equal(40);
      await page.locator('.head [data-testid="status"]').filter({ hasText: 'cancelled' }).waitFor();
      const progress = page.locator('.head [data-testid="progress"]');
      expect(await progress.getAttribute('data-cancelled')).to.equal(String(cancelled.cancelled_jobs));
      expect(await progress.getAttribute('data-done')).to.equal(String(cancelled.done_jobs));
      expect(await progress.textContent()).to.contain(`${cancelled.cancelled_jobs} cancelled`);
      await waitForCount(page, '[data-testid="tile"][data-state="cancelled"]', cancelled.cancelled_jobs, 30_000);
      await waitForCount(page, '[data-testid="tile"][data-state="done"]', cancelled.done_jobs, 30_000);
      expect(await page.getByTestId('cancel-workload').count(), 'nothing left to cancel').to.equal(0);
      expect(await page.getByTestId('dropzone').getAttribute('class')).to.contain('disabled');
      await page.getByTestId('cancelled-at').waitFor();
      // finished, it now has a date of deletion by retention
      const view = await carol.workload(made.workload_id);
      expect(view.expires_at).to.be.a('string');
      expect(await page.locator('.head [data-testid="expires"]').getAttribute('data-expires')).to.equal(
        view.expires_at,
      );

      // the list shows it cancelled; Delete asks first, and Keep keeps it
      await page.locator('a.back').click();
      const item = page.locator(`[data-testid="workload-item"][data-id="${made.workload_id}"]`);
      await item.locator('[data-testid="status"]').filter({ hasText: 'cancelled' }).waitFor();
      expect(await item.getByTestId('cancel-workload').count()).to.equal(0);
      await item.getByTestId('delete-workload').click();
      expect(await item.getByTestId('confirm-delete-prompt').textContent()).to.equal(
        `Delete "${name}" and its 40 images?`,
      );
      // Keep has the focus, so that Enter keeps it
      expect(await page.evaluate('document.activeElement.dataset.testid')).to.equal('keep-workload');
      await page.keyboard.press('Enter');
      await item.getByTestId('delete-workload').waitFor();
      expect((await carol.call('GET', `/workloads/${made.workload_id}`)).status).to.equal(200);

      const [deleted] = await Promise.all([
        page.waitForResponse((response) => response.request().method() === 'DELETE'),
        item
          .getByTestId('delete-workload')
          .click()
          .then(() => item.getByTestId('confirm-delete').click()),
      ]);
      expect(deleted.status()).to.equal(200);
      const freed = (await deleted.json()) as { removed_images: number; removed_bytes: number };
      expect(freed.removed_images).to.equal(40 + cancelled.done_jobs);
      await item.waitFor({ state: 'detached' });
      const notice = await page.getByTestId('notice').textContent();
      const said = /^Deleted "(.+)": (\d+) images and ([\d.]+) (B|KiB|MiB|GiB) freed\.$/.exec(notice ?? '');
      expect(said, notice ?? '').to.not.equal(null);
      expect(said![1]).to.equal(name);
      expect(Number(said![2])).to.equal(freed.removed_images);
      const unit = UNITS[said![4]!]!;
      expect(Math.abs(Number(said![3]) * unit - freed.removed_bytes)).to.be.at.most(0.05 * unit);
      expect((await carol.call('GET', `/workloads/${made.workload_id}`)).status).to.equal(404);
      expect(problems).to.deep.equal([]);
    } finally {
      worker!.child.kill('SIGCONT');
      await context.close();
    }
    const s = server!;
    await waitFor('the worker to be back', async () => liveWorker(s, 'browser-worker')?.state === 'alive', 30_000, 20);
  });

  it('follows workloads made, cancelled and deleted in another tab or through the API, without a reload', async () => {
    const dave = await newUser(url, 'dave', 'dave-pass');
    const context = await browser!.newContext({ viewport: { width: 1200, height: 900 } });
    const page = await context.newPage();
    const problems = watchProblems(page);
    const link = (id: string) => page.locator(`[data-testid="workload-link"][data-id="${id}"]`);
    try {
      await signIn(page, url, 'dave', 'dave-pass');
      await page.evaluate('window.marker = 7');
      // the other tab shares the session
      const other = await context.newPage();
      problems.push(...watchProblems(other));
      await other.goto(url);
      await other.getByTestId('live').filter({ hasText: 'live' }).waitFor();

      // made through the API: it shows up in both tabs
      const made = await dave.createWorkload({ workload_name: `made-${Date.now().toString(36)}` });
      await link(made.workload_id).waitFor();
      await other.locator(`[data-testid="workload-item"][data-id="${made.workload_id}"]`).waitFor();
      // deleted in the other tab: gone from this one
      const otherItem = other.locator(`[data-testid="workload-item"][data-id="${made.workload_id}"]`);
      await otherItem.getByTestId('delete-workload').click();
      await otherItem.getByTestId('confirm-delete').click();
      await other.getByTestId('notice').filter({ hasText: 'Deleted "made-' }).waitFor();
      await link(made.workload_id).waitFor({ state: 'detached' });

      // cancelled through the API: shown cancelled, with nothing left to cancel
      const idle = await dave.createWorkload({ workload_name: `idle-${Date.now().toString(36)}` });
      const idleItem = page.locator(`[data-testid="workload-item"][data-id="${idle.workload_id}"]`);
      await idleItem.getByTestId('cancel-workload').waitFor();
      expect((await dave.cancelWorkload(idle.workload_id)).status).to.equal(200);
      await idleItem.locator('[data-testid="status"]').filter({ hasText: 'cancelled' }).waitFor();
      await idleItem.getByTestId('cancel-workload').waitFor({ state: 'detached' });

      // its page open here, deleted through the API: back to the list, which says so
      await link(idle.workload_id).click();
      await page.getByTestId('workload-page').waitFor();
      expect((await dave.deleteWorkload(idle.workload_id)).status).to.equal(200);
      await page
        .getByTestId('notice')
        .filter({ hasText: `"${idle.workload_name}" was deleted.` })
        .waitFor();
      await page.getByTestId('workload-page').waitFor({ state: 'detached' });
      await page.getByTestId('create-workload').waitFor();
      expect(await link(idle.workload_id).count()).to.equal(0);

      // deleted on its own page here: back to the list with what was freed; the other tab drops it too
      const own = await dave.createWorkload({ workload_name: `own-${Date.now().toString(36)}` });
      await link(own.workload_id).click();
      await page.getByTestId('workload-page').waitFor();
      await other.locator(`[data-testid="workload-item"][data-id="${own.workload_id}"]`).waitFor();
      await page.locator('.head').getByTestId('delete-workload').click();
      await page.locator('.head').getByTestId('confirm-delete').click();
      await page
        .getByTestId('notice')
        .filter({ hasText: `Deleted "${own.workload_name}": 0 images and 0 B freed.` })
        .waitFor();
      await page.getByTestId('workload-page').waitFor({ state: 'detached' });
      await page.getByTestId('create-workload').waitFor();
      expect(await link(own.workload_id).count()).to.equal(0);
      await other.locator(`[data-testid="workload-item"][data-id="${own.workload_id}"]`).waitFor({ state: 'detached' });
      expect((await dave.call('GET', `/workloads/${own.workload_id}`)).status).to.equal(404);

      expect(await listedIds(page)).to.deep.equal([]);
      expect(await page.evaluate('window.marker'), 'no reload').to.equal(7);
      expect(problems).to.deep.equal([]);
    } finally {
      await context.close();
    }
  });

  it('loads the list a page at a time, newest first, with new workloads on top', async () => {
    const erin = await newUser(url, 'erin', 'erin-pass');
    const count = 2 * LIST_PAGE + 5;
    for (let index = 0; index < count; index++) await erin.createWorkload({ workload_name: `page-${index}` });
    const all = async (): Promise<string[]> =>
      ((await erin.call('GET', '/workloads?limit=500')).body.workloads as WorkloadBody[]).map(
        (workload) => workload.workload_id,
      );
    const context = await browser!.newContext({ viewport: { width: 1200, height: 900 } });
    const page = await context.newPage();
    const problems = watchProblems(page);
    const asked: URL[] = [];
    page.on('request', (request) => {
      const address = new URL(request.url());
      if (address.pathname === '/workloads' && request.method() === 'GET') asked.push(address);
    });
    try {
      await signIn(page, url, 'erin', 'erin-pass');
      await waitForCount(page, '[data-testid="workload-item"]', LIST_PAGE);
      const everything = await all();
      expect(await listedIds(page)).to.deep.equal(everything.slice(0, LIST_PAGE));
      await page.getByTestId('more-workloads').waitFor();

      // a new one goes on top while older pages are still to load
      const fresh = await erin.createWorkload({ workload_name: 'page-new' });
      await waitForCount(page, '[data-testid="workload-item"]', LIST_PAGE + 1);
      expect((await listedIds(page))[0]).to.equal(fresh.workload_id);

      await page.getByTestId('more-workloads').click();
      await waitForCount(page, '[data-testid="workload-item"]', 2 * LIST_PAGE + 1);
      await page.getByTestId('more-workloads').click();
      await waitForCount(page, '[data-testid="workload-item"]', count + 1);
      await page.getByTestId('more-workloads').waitFor({ state: 'hidden' });
      expect(await listedIds(page)).to.deep.equal(await all());
      expect(asked.filter((address) => address.searchParams.has('cursor'))).to.have.length(2);
      for (const address of asked) expect(address.searchParams.get('limit')).to.match(/^\d+$/);
      expect(problems).to.deep.equal([]);
    } finally {
      await context.close();
    }
  });

  it('builds a chain step by step, shows a refusal on the step it names, then the chain and why it waits', async () => {
    const frank = await newUser(url, 'frank', 'frank-pass');
    const context = await browser!.newContext({ viewport: { width: 1360, height: 1000 } });
    const page = await context.newPage();
    // the refused chains are answered 422 on purpose
    const problems = watchProblems(page, /status of 422/);
    const steps = page.getByTestId('chain-step');
    const ops = async (): Promise<string[]> =>
      (await page.evaluate(
        `[...document.querySelectorAll('[data-testid="chain-step"]')].map((step) => step.dataset.op)`,
      )) as string[];
    /** Creates the workload, expecting the server to refuse it with `message`, on the step it names. */
    async function refused(message: string, step: number): Promise<void> {
      const [answer] = await Promise.all([
        page.waitForResponse(
          (response) => response.url().endsWith('/workloads') && response.request().method() === 'POST',
        ),
        page.getByTestId('create-workload').click(),
      ]);
      expect(answer.status()).to.equal(422);
      await page.getByTestId('create-message').filter({ hasText: message }).waitFor();
      expect(await page.locator('[data-testid="chain-step"].invalid').count()).to.equal(1);
      expect(await steps.nth(step - 1).getAttribute('class')).to.contain('invalid');
    }
    try {
      await signIn(page, url, 'frank', 'frank-pass');
      const name = `chain-${Date.now().toString(36)}`;
      await page.getByTestId('workload-name').fill(name);
      await page.getByTestId('workload-tags').fill('nowhere');
      await page.getByTestId('workload-filter').selectOption('chain');
      // one step to start with, its form made from GET /operations
      await steps.first().waitFor();
      expect(await ops()).to.deep.equal(['grayscale']);
      await steps.first().getByTestId('step-op').selectOption('resize');
      const resize = steps.first();
      expect(await resize.getByTestId('param-width').getAttribute('max')).to.equal('16384');
      expect(await resize.getByTestId('param-fit').inputValue()).to.equal('cover');
      expect(await resize.getByTestId('param-enlarge').isChecked()).to.equal(false);

      // a resize of no size: the server says so, naming the step
      await refused('step 1 (resize): give "width", "height" or both', 1);
      await resize.getByTestId('param-width').fill('48');
      await resize.getByTestId('param-enlarge').check();

      // two more steps; the last becomes a format, which only the last step may be
      await page.getByTestId('add-step').click();
      await page.getByTestId('add-step').click();
      await steps.nth(2).getByTestId('step-op').selectOption('format');
      expect(await steps.nth(1).locator('option[value="format"]').isDisabled()).to.equal(true);
      expect(await steps.nth(2).locator('option[value="format"]').isDisabled()).to.equal(false);
      await steps.nth(2).getByTestId('param-type').selectOption('webp');
      await steps.nth(2).getByTestId('param-quality').fill('101');
      expect(await ops()).to.deep.equal(['resize', 'grayscale', 'format']);
      await refused('step 3 (format): "quality" must be a whole number from 1 to 100', 3);
      await steps.nth(2).getByTestId('param-quality').fill('70');

      // a step added now goes before the format; moved up, then removed
      await page.getByTestId('add-step').click();
      expect(await ops()).to.deep.equal(['resize', 'grayscale', 'grayscale', 'format']);
      await steps.nth(2).getByTestId('step-op').selectOption('flip');
      await steps.nth(2).getByTestId('step-up').click();
      expect(await ops()).to.deep.equal(['resize', 'flip', 'grayscale', 'format']);
      // nothing moves past the format
      expect(await steps.nth(3).getByTestId('step-up').isDisabled()).to.equal(true);
      expect(await steps.nth(2).getByTestId('step-down').isDisabled()).to.equal(true);
      await steps.nth(1).getByTestId('step-remove').click();
      expect(await ops()).to.deep.equal(['resize', 'grayscale', 'format']);

      const [created] = await Promise.all([
        page.waitForResponse(
          (response) => response.url().endsWith('/workloads') && response.request().method() === 'POST',
        ),
        page.getByTestId('create-workload').click(),
      ]);
      expect(created.status()).to.equal(201);
      await page.getByTestId('workload-page').waitFor();
      const id = ((await created.json()) as WorkloadBody).workload_id;
      const view = (await frank.workload(id)) as unknown as { filter: unknown; operations: unknown; tags: string[] };
      expect(view).to.deep.include({ filter: null, tags: ['nowhere'] });
      expect(view.operations).to.deep.equal([
        { op: 'resize', width: 48, height: null, fit: 'cover', enlarge: true },
        { op: 'grayscale' },
        { op: 'format', type: 'webp', quality: 70 },
      ]);
      const chainText = 'resize 48×auto enlarge → grayscale → WebP q70';
      expect(await page.locator('.head [data-testid="processing"]').textContent()).to.equal(chainText);

      // an image in it waits for a worker with the tag, and the page says so, live
      const image = await makeTestImage(96, 64, 'image/png', 5);
      await drop(page, '[data-testid="dropzone"]', [
        { name: 'wait.png', type: 'image/png', base64: image.toString('base64') },
      ]);
      await page
        .locator('.head [data-testid="waiting-for"]')
        .filter({ hasText: 'waiting: no live worker can carry the tag "nowhere"' })
        .waitFor();
      // and so does the list, beside the chain
      await page.locator('a.back').click();
      const item = page.locator(`[data-testid="workload-item"][data-id="${id}"]`);
      expect(await item.getByTestId('processing').textContent()).to.equal(chainText);
      await item.getByTestId('waiting-for').filter({ hasText: 'no live worker can carry the tag "nowhere"' }).waitFor();
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
      await signIn(page, running.url, 'bob', 'bob-pass');

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

describe('dashboard in headless Chromium, with object storage: upload slots', function () {
  this.timeout(120_000);
  let dirs: TestDirs | null = null;
  let s3: TestS3Server | null = null;
  let server: Server | null = null;
  let browser: Browser | null = null;
  let url = '';
  let restoreEnv: () => void = () => undefined;

  before(async function () {
    if (!ensureChromium()) this.skip();
    dirs = await makeDirs();
    // the bucket answers browsers of other origins (CORS): PUT with a Content-Type
    s3 = await startS3Server({ cors: true });
    restoreEnv = setEnv(s3.env);
    const config = await testServerConfig(dirs, { imageStore: { kind: 's3', ...storeConfigFor(s3) } });
    server = await startServer(config, createLogger('test-server', 'silent'));
    url = `http://127.0.0.1:${server.api.port}`;
    spawnWorker({ controllerPort: config.controller.port, name: 'slots-worker', engine: 'sharp', env: s3.env });
    browser = await launchChromium();
  });

  after(async () => {
    try {
      await browser?.close();
    } finally {
      await killAll();
      await server?.close();
      await s3?.close();
      await dirs?.remove();
      restoreEnv();
    }
  });

  /** Requests the server answered so far: slots opened and confirmed. */
  async function slotRequests(): Promise<{ slots: number; confirms: number }> {
    const metrics = parsePrometheus(await (await fetch(`${url}/metrics`)).text());
    const count = (route: string) => metrics.sum('dpip_http_requests_total', { method: 'POST', route });
    return { slots: count('/uploads'), confirms: count('/uploads/:id/confirm') };
  }

  /** The page's uploads through the server (POST /images), as they are sent. */
  function watchApiUploads(page: Page): string[] {
    const sent: string[] = [];
    page.on('request', (request) => {
      if (request.method() === 'POST' && request.url() === `${url}/images`) sent.push(request.url());
    });
    return sent;
  }

  /** Creates a workload on the page and drops two PNGs and a text file on it. */
  async function dropBatch(page: Page, name: string): Promise<void> {
    await page.getByTestId('workload-name').fill(name);
    await page.getByTestId('create-workload').click();
    await page.getByTestId('workload-page').waitFor();
    const files: DroppedFile[] = [];
    for (const seed of [1, 2])
      files.push({
        name: `photo-${seed}.png`,
        type: 'image/png',
        base64: (await makeTestImage(160, 120, 'image/png', 900 + seed)).toString('base64'),
      });
    files.push({ name: 'notes.txt', type: 'text/plain', base64: Buffer.from('not an image').toString('base64') });
    await drop(page, '[data-testid="dropzone"]', files);
    await waitForCount(page, '[data-testid="upload-row"][data-state="done"]', 2);
    await waitForCount(page, '[data-testid="upload-row"][data-state="failed"]', 1);
    expect(await page.locator('[data-testid="upload-row"][data-state="failed"]').textContent())
      .to.contain('notes.txt')
      .and.to.contain('not a PNG or JPEG');
  }

  /** The ways the uploads that were done went ('slot' or 'api'), by file name. */
  async function uploadedVia(page: Page): Promise<Record<string, string>> {
    return (await page.evaluate(
      `Object.fromEntries([...document.querySelectorAll('[data-testid="upload-row"][data-state="done"]')]
        .map((row) => [row.querySelector('.name').textContent, row.dataset.via]))`,
    )) as Record<string, string>;
  }

  it('puts PNGs straight into the store through slots, then confirms them; the rest through the server', async () => {
    // the page's Content-Security-Policy names the store's origin in connect-src: the PUT goes through it
    const context = await browser!.newContext({ viewport: { width: 1200, height: 800 } });
    const page = await context.newPage();
    const problems = watchProblems(page, /status of 415/);
    const puts: { url: string; headers: Record<string, string> }[] = [];
    const throughApi = watchApiUploads(page);
    page.on('request', (request) => {
      if (request.method() === 'PUT') puts.push({ url: request.url(), headers: request.headers() });
    });
    try {
      const before = await slotRequests();
      await signIn(page, url, 'alice', 'alice-pw');
      const name = `slots-${Date.now().toString(36)}`;
      await dropBatch(page, name);
      expect(await uploadedVia(page)).to.deep.equal({ 'photo-1.png': 'slot', 'photo-2.png': 'slot' });
      const after = await slotRequests();
      expect(after.slots - before.slots).to.equal(2);
      expect(after.confirms - before.confirms).to.equal(2);
      // only the text file went to POST /images (and was refused there)
      expect(throughApi).to.have.length(1);
      // the PUTs went to the store, with the slot's Content-Type and no token
      expect(puts).to.have.length(2);
      for (const request of puts) {
        expect(new URL(request.url).origin).to.equal(s3!.endpoint);
        expect(request.headers['content-type']).to.equal('image/png');
        expect(request.headers.authorization).to.equal(undefined);
      }
      // the bytes are in the bucket, and the worker filters them
      const keys = (await s3!.objectKeys()).filter((key) => key.startsWith(`dpip-test/${name}/`));
      expect(keys.length).to.be.at.least(2);
      await waitForCount(page, '[data-testid="tile"][data-state="done"]', 2, 60_000);
      expect(await page.locator('body').textContent()).to.not.include('X-Amz');
      expect(problems).to.deep.equal([]);
    } finally {
      await context.close();
    }
  });

  it('uploads through the server when the store does not answer the browser (CORS, a policy, a network)', async () => {
    const context = await browser!.newContext({ viewport: { width: 1200, height: 800 } });
    const page = await context.newPage();
    const problems = watchProblems(page, /status of 415|net::ERR_FAILED/);
    const throughApi = watchApiUploads(page);
    // the store's origin is out of the page's reach
    await page.route(`${s3!.endpoint}/**`, (route) => route.abort('failed'));
    try {
      const before = await slotRequests();
      await signIn(page, url, 'alice', 'alice-pw');
      await dropBatch(page, `no-store-${Date.now().toString(36)}`);
      expect(await uploadedVia(page)).to.deep.equal({ 'photo-1.png': 'api', 'photo-2.png': 'api' });
      const after = await slotRequests();
      // the slots asked for before the store was found out of reach are never confirmed
      expect(after.slots - before.slots).to.be.within(1, 2);
      expect(after.confirms - before.confirms).to.equal(0);
      expect(throughApi).to.have.length(3);
      await waitForCount(page, '[data-testid="tile"][data-state="done"]', 2, 60_000);
      expect(problems).to.deep.equal([]);
    } finally {
      await context.close();
    }
  });
});
