// The body of an I/O thread (a piscina worker): runs each batch of whole-file operations synchronously, which on
// its own thread blocks nobody and costs one thread hand-off per batch instead of three or four per file.
import { runBatch } from './io-ops.js';

export default runBatch;
