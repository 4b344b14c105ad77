export { traceDelivery } from './trace.js';
export type { TraceDeps } from './deps.js';
export { admit, decodeDelivery, RATE_SLOT_HEADER, type Admission, type AdmissionContext, type Refusal } from './admission.js';
