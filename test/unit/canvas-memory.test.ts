import { canvasSuite } from '../conformance/canvas.js';
import { memoryUrl } from '../helpers/wait.js';

canvasSuite('memory', () => memoryUrl('canvas'));
