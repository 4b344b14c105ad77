/**
 * Fetch the current weather every 20 minutes and write it to a file.
 *
 *   WEATHER_URL=https://api.example.com/weather?city=Oslo celeriac worker -A examples/weather/dist/tasks.js -B
 *
 * WEATHER_URL   where the weather comes from (any URL answering JSON)
 * WEATHER_FILE  where each reading is appended, one JSON line each (default ./weather.jsonl)
 * WEATHER_EVERY how often (default 20m; '1s' in the test)
 */
import { appendFile } from 'node:fs/promises';
import { createApp, type TaskContext } from '@celeriac/core';

export const app = createApp({ name: 'weather' });

export const fetchWeather = app.task(
  // A failed fetch is retried with backoff rather than lost; a slow one is aborted by its soft limit.
  { name: 'weather.fetch', autoretryFor: [Error], maxRetries: 3, retryBackoff: true, softTimeLimit: 30_000 },
  async function (this: TaskContext, url: string, file: string) {
    const response = await fetch(url, { signal: this.signal });
    if (!response.ok) throw new Error(`weather source answered ${response.status}`);
    const reading = (await response.json());
    await appendFile(file, `${JSON.stringify({ at: new Date().toISOString(), reading })}\n`);
    return reading;
  },
);

app.beat.schedule({
  name: 'weather-every-20-minutes',
  task: fetchWeather,
  args: [process.env.WEATHER_URL ?? 'http://127.0.0.1:8080/weather', process.env.WEATHER_FILE ?? './weather.jsonl'],
  schedule: { every: process.env.WEATHER_EVERY ?? '20m' },
  // Runs older than their next slot are useless for "current" weather.
  options: { expires: 20 * 60_000 },
});
