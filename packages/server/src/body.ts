import type { IncomingMessage } from 'node:http';
import { createGunzip } from 'node:zlib';
import { badRequest, HttpError } from './http-error.ts';

// Reading request bodies within bounds. A body is read chunk by chunk and never grows past its
// limit: a gzip body is inflated as a stream and stopped as soon as its output passes the limit
// (a gzip bomb costs at most `limit` bytes of memory). After a rejection the rest of the body is
// read and thrown away (up to DISCARD_BYTES more), so the client gets the 4xx instead of a reset
// connection; past that the connection is closed.

const DISCARD_BYTES = 64 * 2 ** 20;

/** A client that went away mid-request: nothing to answer. */
export class ClientGoneError extends Error {
  override readonly name = 'ClientGoneError';
}

export type BodyEncoding = 'identity' | 'gzip';

export function bodyEncoding(req: IncomingMessage): BodyEncoding {
  const header = req.headers['content-encoding'];
  if (header === undefined) return 'identity';
  const value = header.trim().toLowerCase();
  if (value === '' || value === 'identity') return 'identity';
  if (value === 'gzip' || value === 'x-gzip') return 'gzip';
  throw new HttpError(
    415,
    'unsupported_encoding',
    `Content-Encoding '${header.slice(0, 100)}' is not supported: send the body as is or gzip-compressed (Content-Encoding: gzip)`,
  );
}

/** The media type of the request (lowercase, without parameters), or '' when absent. */
export function mediaType(req: IncomingMessage): string {
  return (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
}

export function requireMediaType(req: IncomingMessage, expected: string, what: string): void {
  const found = mediaType(req);
  if (found !== expected) {
    throw new HttpError(
      415,
      'unsupported_media_type',
      `${what} must be sent with Content-Type: ${expected}${found === '' ? ' (none was given)' : `, got '${found.slice(0, 100)}'`}`,
    );
  }
}

function tooLarge(what: string, limit: number, measured: 'bytes' | 'decompressed bytes'): HttpError {
  return new HttpError(
    413,
    'too_large',
    `${what} is larger than the limit of ${limit} ${measured}: send smaller batches`,
    { details: { limit, unit: measured === 'bytes' ? 'bytes' : 'decompressed_bytes' } },
  );
}

/** Reads the whole body (decoded), at most `limit` bytes; HttpError 413/400/415 otherwise. */
export function readBody(req: IncomingMessage, limit: number, what: string): Promise<Buffer> {
  const encoding = bodyEncoding(req);
  const declared = Number(req.headers['content-length'] ?? Number.NaN);
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let wireBytes = 0;
    let decodedBytes = 0;
    let failure: Error | undefined;
    let settled = false;
    const gunzip = encoding === 'gzip' ? createGunzip({ chunkSize: 64 * 1024 }) : undefined;

    const settle = (error: Error | undefined, body?: Buffer) => {
      if (settled) return;
      settled = true;
      if (error === undefined) resolve(body!);
      else reject(error);
    };
    const fail = (error: Error) => {
      if (failure !== undefined) return;
      failure = error;
      chunks.length = 0;
      gunzip?.destroy();
      if (req.readableEnded || req.complete) settle(error);
    };
    const take = (chunk: Buffer) => {
      decodedBytes += chunk.length;
      if (decodedBytes > limit)
        fail(tooLarge(what, limit, encoding === 'gzip' ? 'decompressed bytes' : 'bytes'));
      else chunks.push(chunk);
    };

    if (declared > limit) fail(tooLarge(what, limit, 'bytes'));
    if (gunzip !== undefined) {
      gunzip.on('data', (chunk: Buffer) => {
        if (failure === undefined) take(chunk);
      });
      gunzip.on('error', (error) =>
        fail(
          badRequest(
            'invalid_body',
            `${what} is not valid gzip (${error.message}): compress it with gzip or drop Content-Encoding`,
          ),
        ),
      );
      gunzip.on('end', () => {
        if (failure === undefined) settle(undefined, Buffer.concat(chunks, decodedBytes));
      });
    }
    req.on('data', (chunk: Buffer) => {
      wireBytes += chunk.length;
      if (failure !== undefined) {
        if (wireBytes > limit + DISCARD_BYTES) {
          req.destroy();
          settle(failure);
        }
        return;
      }
      if (wireBytes > limit) fail(tooLarge(what, limit, 'bytes'));
      else if (gunzip !== undefined) gunzip.write(chunk);
      else take(chunk);
    });
    req.on('end', () => {
      if (failure !== undefined) settle(failure);
      else if (gunzip !== undefined) gunzip.end();
      else settle(undefined, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, decodedBytes));
    });
    req.on('error', (error) => settle(new ClientGoneError(error.message)));
    req.on('close', () => {
      if (!req.complete)
        settle(new ClientGoneError('the client closed the connection before sending the whole body'));
    });
  });
}
