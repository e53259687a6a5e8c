// `npm run bench`: runs every bench module, prints a table and writes bench/results.json.
// `npm run bench -- store cas` runs only the named modules. REWIND_BENCH_RUNS sets repetitions.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import type { Bench, BenchRow } from './lib.ts';

const MODULES = ['store', 'cas', 'capture', 'redact', 'ingest', 'replay'];

const only = process.argv.slice(2).filter((arg) => !arg.startsWith('-'));
const selected = only.length > 0 ? MODULES.filter((name) => only.includes(name)) : MODULES;
const runs = Number(process.env.REWIND_BENCH_RUNS ?? 5);
const rows: BenchRow[] = [];

for (const name of selected) {
  const tmpDir = mkdtempSync(join(tmpdir(), `rewind-bench-${name}-`));
  try {
    const bench = (await import(`./${name}.ts`)).default as Bench;
    console.error(`bench ${name}…`);
    rows.push(
      ...(await bench({
        tmpDir,
        postgresUrl: process.env.REWIND_BENCH_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test',
        runs,
        log: (message) => console.error(`  ${name}: ${message}`),
      })),
    );
  } finally {
    rmSync(tmpDir, { recursive: true, force: true });
  }
}

const format = (value: number | undefined): string =>
  value === undefined ? '' : value >= 100 ? Math.round(value).toLocaleString('en-US') : value.toPrecision(3);
const table = [
  ['name', 'unit', 'median', 'p99', 'peer', 'target'],
  ...rows.map((row) => [
    row.name,
    row.unit,
    format(row.median),
    format(row.p99),
    row.peer ?? '',
    row.target ?? '',
  ]),
];
const widths = table[0]!.map((_, column) => Math.max(...table.map((line) => line[column]!.length)));
for (const line of table) console.log(line.map((cell, column) => cell.padEnd(widths[column]!)).join('  '));

const machine = `${cpus().length}× ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
console.log(`\nmachine: ${machine}; medians over ${runs} runs`);
// A partial run (`npm run bench -- store`) replaces only its own rows in results.json.
const resultsFile = new URL('results.json', import.meta.url);
let previous: BenchRow[] = [];
try {
  previous = only.length > 0 ? (JSON.parse(readFileSync(resultsFile, 'utf8')) as BenchRow[]) : [];
} catch {}
const fresh = new Set(rows.map((row) => row.name));
const merged = [...previous.filter((row) => !fresh.has(row.name)), ...rows];
writeFileSync(resultsFile, `${JSON.stringify(merged, null, 2)}\n`);
