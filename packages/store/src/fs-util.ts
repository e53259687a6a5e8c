import { randomBytes } from 'node:crypto';
import { readFile, type Stats } from 'node:fs';
import { open, readdir, stat } from 'node:fs/promises';
import { promisify } from 'node:util';

// Small filesystem helpers shared by the loose-file CAS and its packs.

// The callback readFile reads a small file in about half the time of fs/promises' (measured).
const readFileCallback = promisify(readFile);

/** `<pid>-<16 hex>`: names temp and trash files so that the writer's pid can be checked later. */
export function uniqueSuffix(): string {
  return `${process.pid}-${randomBytes(8).toString('hex')}`;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return !isCode(error, 'ESRCH'); // EPERM: alive, owned by someone else
  }
}

export async function fsyncDir(dir: string): Promise<void> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(dir, 'r');
  } catch (error) {
    if (isCode(error, 'EISDIR') || isCode(error, 'EPERM')) return; // platforms that cannot open directories
    throw error;
  }
  try {
    await handle.sync();
  } catch (error) {
    if (!isCode(error, 'EINVAL')) throw error; // filesystems that do not sync directories
  } finally {
    await handle.close();
  }
}

export async function statIfExists(path: string): Promise<Stats | undefined> {
  try {
    return await stat(path);
  } catch (error) {
    if (isCode(error, 'ENOENT')) return undefined;
    throw error;
  }
}

export async function readFileIfExists(path: string): Promise<Buffer | undefined> {
  try {
    return await readFileCallback(path);
  } catch (error) {
    if (isCode(error, 'ENOENT')) return undefined;
    throw error;
  }
}

export async function readdirIfExists(dir: string, pattern?: RegExp): Promise<string[]> {
  try {
    const names = await readdir(dir);
    return (pattern === undefined ? names : names.filter((name) => pattern.test(name))).sort();
  } catch (error) {
    if (isCode(error, 'ENOENT')) return [];
    throw error;
  }
}

/** Runs `fn` over `items` with at most `limit` calls in flight; rejects with the first failure. */
export async function forEachLimit<T>(
  items: Iterable<T> | AsyncIterable<T>,
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  const iterator: Iterator<T> | AsyncIterator<T> =
    Symbol.asyncIterator in items ? items[Symbol.asyncIterator]() : items[Symbol.iterator]();
  let failed = false;
  const worker = async (): Promise<void> => {
    while (!failed) {
      const next = await iterator.next();
      if (next.done) return;
      try {
        await fn(next.value);
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  };
  await Promise.all(Array.from({ length: limit }, worker));
}

export function isCode(error: unknown, code: string): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === code;
}

export function ignoreCode(code: string): (error: unknown) => void {
  return (error) => {
    if (!isCode(error, code)) throw error;
  };
}
