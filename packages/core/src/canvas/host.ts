import type { ResultBackend } from '../backend/backend.js';
import type { MessageOptions } from '../task/options.js';

/**
 * What applying a canvas needs of an app: send a task, reach the result backend,
 * and how long results live. An app is one; so is anything a test or a worker
 * hands in. Narrow on purpose: canvas code never sees the whole app.
 */
export interface CanvasHost {
  readonly config: { readonly resultExpires: number };
  sendTask(name: string, args?: readonly unknown[], kwargs?: Readonly<Record<string, unknown>>, options?: MessageOptions): Promise<unknown>;
  backend(): Promise<ResultBackend>;
}
