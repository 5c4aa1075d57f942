// Failover: two `dpip` servers on one PostgreSQL database (a throwaway cluster, test/helpers/postgres.ts) and one
// images folder, one worker given both controllers. The leader is SIGKILLed, then started again (it forwards to
// the new leader), and the other one killed next: KILLS times (default 10). Per kill it prints how long until the
// other server answers as the leader, and until a job submitted right after the kill has its result.
import { TestClient } from '../test/helpers/api.js';
import { makeTestImage } from '../test/helpers/images.js';
import { freePorts } from '../test/helpers/ports.js';
import { startPostgres } from '../test/helpers/postgres.js';
import { killAll, waitFor, type Spawned } from '../test/helpers/processes.js';
import { launchServer, makeDirs, spawnWorker } from '../test/helpers/system.js';

const KILLS = Number(process.env.KILLS ?? 10);

interface Node {
  name: string;
  apiPort: number;
  controllerPort: number;
  url: string;
  process: Spawned | null;
}

const postgres = await startPostgres();
const dirs = await makeDirs();
try {
  const database = await postgres.createDatabase();
  const nodes: Node[] = [];
  for (const name of ['a', 'b'])
    nodes.push({
      name,
      apiPort: await freePorts(1),
      controllerPort: await freePorts(3),
      url: '',
      process: null,
    });

  async function start(node: Node): Promise<void> {
    // one images folder for both (one machine): the data folder holds only the cluster secret here
    const args = ['--port', String(node.apiPort), '--controller-port', String(node.controllerPort)];
    args.push('--datastore', database);
    const launched = await launchServer(dirs, args);
    node.process = launched.process;
    node.url = `http://127.0.0.1:${node.apiPort}`;
    await waitFor(
      `server ${node.name}`,
      async () => (await fetch(`${node.url}/status`).catch(() => null))?.status === 401,
      30_000,
    );
  }

  async function leads(node: Node, client: TestClient): Promise<boolean> {
    const answer = await fetch(`${node.url}/status`, { headers: client.headers() }).catch(() => null);
    return answer?.status === 200 && answer.headers.get('x-dpip-forwarded-to-leader') === null;
  }

  for (const node of nodes) await start(node);
  const controllers = nodes.map((node) => `127.0.0.1:${node.controllerPort}`);
  spawnWorker({
    controllerPort: nodes[0]!.controllerPort,
    controllers,
    name: 'bench-worker',
    imagesDir: dirs.imagesDir,
  });
  let client = await TestClient.login(nodes[1]!.url, 'alice', 'alice-pw');
  const workload = await client.createWorkload({ filter: 'grayscale' });
  const image = await makeTestImage(64, 64, 'image/png', 1);
  // a first job: the worker is registered with the leader
  await client.upload(workload.workload_id, image, 'warm.png', 'image/png');
  await client.waitForCompletion(workload.workload_id, 60_000);

  const leadMs: number[] = [];
  const jobMs: number[] = [];
  console.log(`failover: ${KILLS} kills of the leader, two servers on one PostgreSQL database, one worker`);
  for (let kill = 1; kill <= KILLS; kill++) {
    const leader = (await leads(nodes[0]!, client)) ? nodes[0]! : nodes[1]!;
    const other = leader === nodes[0] ? nodes[1]! : nodes[0]!;
    const killed = performance.now();
    await leader.process!.kill('SIGKILL');
    await waitFor('the other server to lead', () => leads(other, client), 30_000, 10);
    const led = performance.now() - killed;
    client = new TestClient(other.url, client.token);
    const upload = await client.upload(workload.workload_id, image, `${kill}.png`, 'image/png');
    if (upload.status !== 201) throw new Error(`upload after the kill: ${upload.status}`);
    await client.waitForCompletion(workload.workload_id, 60_000);
    const job = performance.now() - killed;
    leadMs.push(led);
    jobMs.push(job);
    console.log(
      `  kill ${kill}: ${other.name} led after ${led.toFixed(0)} ms; a new job's result after ${job.toFixed(0)} ms`,
    );
    await start(leader);
  }
  const sorted = (values: number[]): number[] => [...values].sort((x, y) => x - y);
  const summary = (values: number[]): string => {
    const ordered = sorted(values);
    const median = ordered[Math.floor(ordered.length / 2)]!;
    return `min ${ordered[0]!.toFixed(0)} ms, median ${median.toFixed(0)} ms, max ${ordered.at(-1)!.toFixed(0)} ms`;
  };
  console.log(`to lead: ${summary(leadMs)} (target: within 10 s)`);
  console.log(`to a new job's result: ${summary(jobMs)}`);
} finally {
  await killAll();
  await postgres.stop();
  await dirs.remove();
}
