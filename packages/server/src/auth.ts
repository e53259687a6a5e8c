import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { HttpError } from './http-error.ts';

// API keys (docs/api.md "Auth"): ingest keys for the write routes, read keys for the GET routes
// and /metrics. Keys are compared as sha256 digests with timingSafeEqual: fixed length, so neither
// the content nor the length of a key leaks through timing. Every configured key is compared
// (no early exit), so the time does not say which one matched either.

export type KeyKind = 'ingest' | 'read';

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost', '[::1]']);

export function isLoopbackHost(host: string): boolean {
  return LOOPBACK.has(host.toLowerCase()) || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

function digest(key: string): Buffer {
  return createHash('sha256').update(key, 'utf8').digest();
}

export class Keys {
  readonly #ingest: Buffer[];
  readonly #read: Buffer[];
  /** False when no key is configured (allowed on loopback only): every route is open. */
  readonly enabled: boolean;

  constructor(ingest: readonly string[], read: readonly string[]) {
    for (const key of [...ingest, ...read]) {
      if (key.trim() === '' || key !== key.trim() || /\s/.test(key))
        throw new TypeError('an API key must be a non-empty string without whitespace');
    }
    this.#ingest = ingest.map(digest);
    this.#read = read.map(digest);
    this.enabled = ingest.length + read.length > 0;
  }

  #matches(list: readonly Buffer[], candidate: Buffer): boolean {
    let found = false;
    for (const key of list) found = timingSafeEqual(key, candidate) || found;
    return found;
  }

  /** Throws 401/403 unless the request carries a key of `kind`. */
  check(req: IncomingMessage, kind: KeyKind): void {
    if (!this.enabled) return;
    const header = req.headers.authorization;
    const match = header === undefined ? null : /^Bearer +(\S+) *$/i.exec(header);
    if (match === null) {
      throw new HttpError(
        401,
        'unauthorized',
        header === undefined
          ? 'this server needs an API key: send it as Authorization: Bearer <key>'
          : 'the Authorization header must be Bearer <key>',
        { headers: { 'WWW-Authenticate': 'Bearer' } },
      );
    }
    const candidate = digest(match[1]!);
    const isIngest = this.#matches(this.#ingest, candidate);
    const isRead = this.#matches(this.#read, candidate);
    if (kind === 'ingest' ? isIngest : isRead) return;
    if (isIngest || isRead) {
      throw new HttpError(
        403,
        'forbidden',
        kind === 'ingest'
          ? 'this key is a read key: sending events and blobs needs an ingest key'
          : 'this key is an ingest key: reading runs and metrics needs a read key',
      );
    }
    throw new HttpError(401, 'unauthorized', 'unknown API key: check the key the server was started with', {
      headers: { 'WWW-Authenticate': 'Bearer' },
    });
  }
}
