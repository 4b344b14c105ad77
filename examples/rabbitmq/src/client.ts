/**
 * The client: orders go to the `orders` queue, reports to `reports`, and one urgent report is sent with a
 * higher priority than the reports queued before it.
 *
 *   node dist/client.js      (with both workers running; see README.md)
 */
import { app, placeOrder, renderReport } from './tasks.js';

try {
  // Routing: three orders, served by the orders worker.
  const orders = await Promise.all(['A-1', 'A-2', 'A-3'].map((id, i) => placeOrder.delay(id, i + 1).get({ timeout: 10_000 })));
  for (const o of orders) console.log(`order ${o.orderId} (${o.items} items) placed by worker ${o.worker}`);

  // Priority: the reports worker runs one report at a time (-c 1). While the month-end report keeps it busy, three
  // weekly reports queue up at the default priority, then an urgent one at priority 9: RabbitMQ hands the worker the
  // urgent one next. Each `delay`/`applyAsync` resolves once the broker confirmed the message, so they queue in order.
  const monthEnd = await renderReport.delay('month-end', 1500);
  const weekly = [];
  for (const week of [1, 2, 3]) weekly.push(await renderReport.applyAsync([`weekly-${week}`, 50], { priority: 1 }));
  const urgent = await renderReport.applyAsync(['urgent-audit', 50], { priority: 9 });
  const reports = await Promise.all([monthEnd, ...weekly, urgent].map((r) => r.get({ timeout: 20_000 })));
  reports.sort((a, b) => a.position - b.position);
  console.log(`reports ran in this order: ${reports.map((r) => r.name).join(', ')}`);
  console.log(`all reports rendered by worker ${[...new Set(reports.map((r) => r.worker))].join(', ')}`);
} catch (err) {
  console.error(err);
  process.exitCode = 1;
} finally {
  await app.close();
}
