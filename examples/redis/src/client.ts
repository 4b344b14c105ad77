/**
 * The client: sends work to whatever workers consume the queue, and waits for the results.
 *
 *   CELERIAC_BROKER_URL=redis://localhost:6379/0 node dist/client.js
 */
import { chord, TaskError } from '@celeriac/core';
import { app, charge, countWords, mergeCounts } from './tasks.js';

try {
  // 1. A task that fails twice and is retried. `delay()` resolves once Redis has the message; the handle's
  //    `get()` waits for the outcome. Both in one step: `charge.delay(...).get({ timeout })`.
  const sent = await charge.delay('order-1001', 4999);
  console.log(`sent payments.charge as task ${sent.id}`);
  const receipt = await sent.get({ timeout: 20_000 });
  console.log(`charged ${receipt.orderId}: ${receipt.cents} cents, after ${receipt.attempts} attempts (state ${await sent.state()})`);

  // 2. A chord: count the words of each document in parallel, then merge the counts once all are done.
  const documents = [
    'the quick brown fox jumps over the lazy dog',
    'the dog barks and the fox runs',
    'a lazy afternoon for the dog',
  ];
  const top = await app.send(chord(documents.map((d) => countWords.s(d)), mergeCounts.s(3))).get({ timeout: 20_000 });
  console.log(`top words across ${documents.length} documents: ${top.map(([w, n]) => `${w}=${n}`).join(', ')}`);
} catch (err) {
  // A remote failure arrives as a TaskError with the worker's exception type and message.
  if (err instanceof TaskError) console.error(`task ${err.taskId} failed: ${err.excType}: ${err.excMessage}`);
  else console.error(err);
  process.exitCode = 1;
} finally {
  // Close the connections, or the process stays alive.
  await app.close();
}
