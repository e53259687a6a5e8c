import { Worker } from 'node:worker_threads';

// SQLite in WAL mode copies the log back into the database file in "checkpoints", and with
// synchronous=NORMAL each checkpoint fsyncs the log and the database. Done inline (SQLite's
// default, every 1000 pages) that is more than half the cost of a 2 KB insert. So the writing
// connection turns auto-checkpoints off and a worker thread, with its own connection, runs
// PASSIVE checkpoints (which never block the writer) on the other core whenever about 8 MB has
// been written. If the log still grows past a bound (a sustained write burst that the worker
// cannot catch up with), the writer checkpoints inline once, as SQLite would have.

const SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { DatabaseSync } = require('node:sqlite');
const db = new DatabaseSync(workerData.file, { timeout: workerData.timeoutMs });
const checkpoint = db.prepare('PRAGMA wal_checkpoint(PASSIVE)');
parentPort.on('message', (message) => {
  if (message === 'close') {
    try { db.exec('PRAGMA wal_checkpoint(TRUNCATE)'); } catch {}
    db.close();
    parentPort.close();
    return;
  }
  try {
    const row = checkpoint.get();
    parentPort.postMessage({ log: Number(row.log), checkpointed: Number(row.checkpointed) });
  } catch (error) {
    parentPort.postMessage({ error: String((error && error.message) || error) });
  }
});
`;

/** Bytes written between two checkpoint requests (SQLite's default is 1000 pages). */
const REQUEST_EVERY_BYTES = 8 * 1024 * 1024;
/** Log frames beyond which the writer checkpoints inline. */
const INLINE_AFTER_FRAMES = 65_536;

export class BackgroundCheckpointer {
  readonly #file: string;
  readonly #timeoutMs: number;
  readonly #inline: () => void;
  #worker: Worker | undefined;
  #exited = false;
  #failed = false;
  #inFlight = false;
  #bytes = 0;
  #logFrames = 0;

  /** `inline` checkpoints on the writer's own connection (the fallback). */
  constructor(file: string, timeoutMs: number, inline: () => void) {
    this.#file = file;
    this.#timeoutMs = timeoutMs;
    this.#inline = inline;
  }

  /** Called by the writer after each commit with about how many bytes it wrote. */
  wrote(bytes: number): void {
    this.#bytes += bytes;
    if (this.#bytes < REQUEST_EVERY_BYTES) return;
    if (this.#failed || this.#logFrames > INLINE_AFTER_FRAMES) {
      this.#bytes = 0;
      this.#logFrames = 0;
      this.#inline();
      return;
    }
    if (this.#inFlight) return;
    this.#bytes = 0;
    this.#inFlight = true;
    this.#start().postMessage('checkpoint');
  }

  #start(): Worker {
    if (this.#worker !== undefined) return this.#worker;
    const worker = new Worker(SOURCE, {
      eval: true,
      workerData: { file: this.#file, timeoutMs: this.#timeoutMs },
    });
    worker.on('message', (result: { log?: number; error?: string }) => {
      this.#inFlight = false;
      if (result.error !== undefined) this.#failed = true;
      else this.#logFrames = result.log ?? 0;
    });
    worker.on('error', () => {
      this.#failed = true;
      this.#inFlight = false;
    });
    worker.on('exit', () => {
      this.#exited = true;
      this.#failed = true;
    });
    // After the listeners: adding a 'message' listener refs the worker again. An unclosed store
    // must not keep the process alive.
    worker.unref();
    this.#worker = worker;
    return worker;
  }

  /** Checkpoints what is left and stops the worker; call after the writer's connection is closed. */
  async close(): Promise<void> {
    const worker = this.#worker;
    if (worker === undefined || this.#exited) return;
    this.#worker = undefined;
    const exited = new Promise<void>((done) => worker.once('exit', () => done()));
    worker.ref();
    worker.postMessage('close');
    await exited;
  }
}
