import v8 from 'node:v8';

/**
 * Turns off V8's incremental (and concurrent) marking for this process: old-generation collections then run as
 * one short atomic pause each instead of being started in the background.
 *
 * Why: while a large body streams in, almost everything the process allocates is socket buffers (outside the
 * JavaScript heap) and the JavaScript heap barely grows. With a live heap around 10 MB, as this server's, V8 was
 * seen (`--trace-gc`) to start a new incremental marking after every young collection (one per ~32 MB of buffers):
 * a full mark-compact every ~80 ms for the whole upload, 30-40 per GiB instead of 0-2, and 15-20 % less
 * throughput. It happens in a band of heap sizes (a minimal Fastify route with 2 MB of ballast did it too; with 4
 * or 6 MB it did not), so shrinking the heap is no dependable way out. With this flag: 0-1 per upload, and the
 * throughput of a minimal Fastify route that pipes into a file. The heap is small, so an atomic collection is a
 * pause of a few milliseconds.
 *
 * V8 reads the flag each time it decides whether to start marking, so setting it at start-up is enough (a
 * marking already under way finishes normally). Set before any worker thread starts: flags are process-wide.
 */
export function preferAtomicMarking(): void {
  v8.setFlagsFromString('--no-incremental-marking');
  v8.setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
}

/**
 * After each full collection the old generation may grow by this much before the next (V8 reads it each time it sets
 * the limit). V8's own factor follows the GC's share of the time, which is tiny here, so it let the heap grow to about
 * four times what is live: under sustained small uploads ~20 MB live became 76 MB of heap between collections, most
 * of the server's memory (issue 17: peak RSS 190 MiB). With 50 %, a collection (~15 ms) comes every second or two
 * under such load and the heap stays near 30 MB.
 */
const HEAP_GROWING_PERCENT = 50;
