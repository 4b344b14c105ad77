import { requestRetry, type TaskContext, type TaskLogger } from '../task/context.js';
import { newId } from '../util/ids.js';
import type { RegisteredTask } from './registry.js';

const quietLogger: TaskLogger = { debug() {}, info() {}, warn() {}, error() {} };

/** The context of a direct, in-process call (`add(1, 2)`): no broker, no result storage. */
export function localContext(task: RegisteredTask, args: readonly unknown[]): TaskContext {
  const id = newId();
  return {
    id,
    name: task.name,
    retries: 0,
    rootId: id,
    parentId: null,
    groupId: null,
    hostname: null,
    args,
    kwargs: {},
    signal: new AbortController().signal,
    log: quietLogger,
    updateState: async () => {},
    retry: requestRetry,
  };
}
