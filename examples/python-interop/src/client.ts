/**
 * The celeriac client: calls the Python task `py.add`, then a chain whose first step runs on the Python worker
 * and whose second runs on the celeriac worker.
 *
 *   node dist/client.js      (with both workers running; see README.md)
 */
import { chain } from '@celeriac/core';
import { app, double, pyAdd } from './tasks.js';

try {
  const sum = await pyAdd.delay(2, 3).get({ timeout: 20_000 });
  console.log(`py.add(2, 3) -> ${sum}`);

  // py.add runs in Python; the Python worker then sends the chain's next step, node.double, to the node queue.
  const doubled = await app.send(chain(pyAdd.s(20, 1), double.s())).get({ timeout: 20_000 });
  console.log(`chain(py.add(20, 1), node.double) -> ${doubled}`);
} catch (err) {
  console.error(err);
  process.exitCode = 1;
} finally {
  await app.close();
}
