export { Beat, slotTaskId, type BeatOptions, type BeatLogger } from './beat.js';
export { BeatSchedules, type EntryView } from './api.js';
export { compileSchedule, slotsBetween, type Schedule } from './schedule.js';
export { openBeatStore } from './open-store.js';
export type { BeatStore, EntryState } from './store/store.js';
export { MemoryBeatStore } from './store/memory.js';
export { SqliteBeatStore } from './store/sqlite.js';
export { RedisBeatStore } from './store/redis.js';
