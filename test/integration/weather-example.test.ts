import { createServer } from 'node:http';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { celeriac, ROOT } from '../helpers/processes.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';

describe('examples/weather: fetch the weather periodically and write it to a file', () => {
  it('runs with a shortened interval against a local weather source', async () => {
    let served = 0;
    const server = createServer((req, res) => {
      served++;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ city: 'Oslo', temperatureC: 3 + served, path: req.url }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    const dir = tempDir('celeriac-weather-');
    const file = join(dir, 'weather.jsonl');
    try {
      const w = celeriac(['worker', '-A', join(ROOT, 'examples', 'weather', 'dist', 'tasks.js'), '-B'], {
        CELERIAC_BROKER_URL: `sqlite://${join(dir, 'broker.db')}`,
        WEATHER_URL: `http://127.0.0.1:${port}/weather?city=Oslo`,
        WEATHER_FILE: file,
        WEATHER_EVERY: '1s',
      });
      await waitFor(() => existsSync(file) && readFileSync(file, 'utf8').trim().split('\n').length >= 2, 'two readings written', 20_000, 100);
      const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { at: string; reading: { city: string; path: string } });
      expect(lines[0]!.reading).toMatchObject({ city: 'Oslo', path: '/weather?city=Oslo' });
      expect(Date.parse(lines[1]!.at)).toBeGreaterThan(Date.parse(lines[0]!.at));
      w.proc.kill('SIGTERM');
      expect(await w.exited).toBe(0);
    } finally {
      server.close();
    }
  });
});
