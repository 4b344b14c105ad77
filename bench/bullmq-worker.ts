// BullMQ worker for `pnpm bench`: no-op and echo jobs, concurrency from argv.
import { Worker } from 'bullmq';

const [url = '', concurrency = '1'] = process.argv.slice(2);
const u = new URL(url);
const worker = new Worker('bench', async (job) => (job.name === 'echo' ? (job.data as { x: number }).x : null), {
  connection: { host: u.hostname, port: Number(u.port) },
  concurrency: Number(concurrency),
});
await worker.waitUntilReady();
console.log('bullmq worker ready');
process.on('SIGTERM', () => void worker.close().then(() => process.exit(0)));
