// A server for bench/ingest.ts, in a process of its own. Like `rewind serve`, it logs JSON lines on
// stdout, the first {"msg":"listening","url":…}; the baseline prints that line only.
//   rewind-sqlite <dir>                      startServer on SQLite (what `rewind serve --store <dir>` runs)
//   rewind-postgres <url> <schema> <blobs>   startServer on PostgreSQL
//   baseline <file>                          a plain node:http server that parses the JSON and inserts
//                                            one row per event into node:sqlite, a transaction per batch
import { createServer } from 'node:http';
import { DatabaseSync } from 'node:sqlite';
import { startServer } from '../../packages/server/src/index.ts';
import { openFsBlobStore, PostgresStore, SqliteStore } from '../../packages/store/src/index.ts';

const [mode, a, b, c] = process.argv.slice(2);

/** The process's CPU time (all threads) since it listened, printed when it stops: the parent divides it by the events. */
let cpuAtListen: NodeJS.CpuUsage | undefined;
function printCpu(): void {
  const { user, system } = process.cpuUsage(cpuAtListen);
  process.stdout.write(`${JSON.stringify({ msg: 'cpu', cpuUs: user + system })}\n`);
}

if (mode === 'baseline') {
  const db = new DatabaseSync(a!);
  db.exec(
    'PRAGMA page_size = 8192; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA cache_size = -65536',
  );
  db.exec('CREATE TABLE events (id INTEGER PRIMARY KEY, body TEXT NOT NULL)');
  const insert = db.prepare('INSERT INTO events (body) VALUES (?)');
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      try {
        const { events } = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { events: unknown[] };
        db.exec('BEGIN');
        for (const event of events) insert.run(JSON.stringify(event));
        db.exec('COMMIT');
        const body = JSON.stringify({ accepted: events.length });
        res
          .writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
          .end(body);
      } catch (error) {
        if (db.isTransaction) db.exec('ROLLBACK');
        res.writeHead(400).end(String(error));
      }
    });
  });
  process.once('SIGTERM', () => {
    printCpu();
    server.close();
    db.close();
    process.exit(0);
  });
  server.listen(0, '127.0.0.1', () => {
    cpuAtListen = process.cpuUsage();
    const address = server.address() as { port: number };
    process.stdout.write(
      `${JSON.stringify({ msg: 'listening', url: `http://127.0.0.1:${address.port}` })}\n`,
    );
  });
} else {
  const store =
    mode === 'rewind-sqlite'
      ? await SqliteStore.open(a!, { blobs: await openFsBlobStore(`${a}/blobs`) })
      : await PostgresStore.open(a!, { schema: b!, blobs: () => openFsBlobStore(c!) });
  // The default log: one JSON line per request on stdout, as `rewind serve` writes.
  const server = await startServer({ store, port: 0 });
  cpuAtListen = process.cpuUsage();
  process.once('SIGTERM', async () => {
    await server.close();
    await store.close();
    printCpu();
    process.exit(0);
  });
}
