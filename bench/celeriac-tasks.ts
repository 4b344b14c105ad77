// Tasks for `pnpm bench`: a no-op whose result is ignored (throughput) and an echo (round trip).
import { createApp } from '@celeriac/core';

export const app = createApp({ name: 'bench' });
app.task({ name: 'bench.noop', ignoreResult: true }, () => null);
app.task({ name: 'bench.echo' }, (x: number) => x);
