import { promisify } from 'node:util';
import {
  constants as zlibConstants,
  zstdCompress,
  zstdCompressSync,
  zstdDecompress,
  zstdDecompressSync,
} from 'node:zlib';
import { type BlobHash, blobHashHex, sha256Hex } from '@rewind/schema';
import { BlobCorruptError, InvalidBlobHashError } from './blob-errors.ts';

// How a blob is stored at rest by every BlobStore (filesystem loose files, S3 objects): one zstd
// frame of its bytes with the size pledged in the header, re-hashed after every decompression.

// Measured on Node 24 (2 KB JSON-ish text): sync zstd takes ~30 µs to compress and ~25 µs to
// decompress, the async calls ~50 µs (a thread-pool round trip). Above these sizes the sync calls
// would block the event loop for more than ~150 µs, so big blobs go to the thread pool.
const SYNC_COMPRESS_LIMIT = 32 * 1024;
const SYNC_DECOMPRESS_LIMIT = 128 * 1024;
// Output chunk size for decompression when the frame declares the size: one chunk is much faster
// than the default 16 KiB chunks, but a damaged header must not make us allocate gigabytes up front.
const MAX_DECOMPRESS_CHUNK = 8 * 1024 * 1024;
/** Magic number + descriptor + window + dictionary id + content size: the longest zstd frame header. */
export const MAX_FRAME_HEADER = 18;

const compressAsync = promisify(zstdCompress);
const decompressAsync = promisify(zstdDecompress);

export function hexOf(hash: BlobHash): string {
  const hex = blobHashHex(hash);
  if (hex === undefined) throw new InvalidBlobHashError(hash);
  return hex;
}

export async function compress(bytes: Uint8Array, level: number): Promise<Buffer> {
  const options = {
    // Pledging the size makes zstd record it in the frame header, which stat() reads.
    pledgedSrcSize: bytes.byteLength,
    params: { [zlibConstants.ZSTD_c_compressionLevel]: level },
  };
  return bytes.byteLength <= SYNC_COMPRESS_LIMIT
    ? zstdCompressSync(bytes, options)
    : compressAsync(bytes, options);
}

export async function decode(hash: BlobHash, hex: string, path: string, file: Buffer): Promise<Buffer> {
  const declared = frameContentSize(file.subarray(0, MAX_FRAME_HEADER));
  if (declared === 'invalid') throw new BlobCorruptError(hash, path, 'not a zstd frame');
  let bytes: Buffer;
  try {
    const options =
      declared === 'unknown'
        ? {}
        : {
            maxOutputLength: Math.max(declared, 1),
            chunkSize: Math.min(Math.max(declared, 64), MAX_DECOMPRESS_CHUNK),
          };
    const expected = declared === 'unknown' ? file.byteLength : declared;
    bytes =
      expected <= SYNC_DECOMPRESS_LIMIT
        ? zstdDecompressSync(file, options)
        : await decompressAsync(file, options);
  } catch (cause) {
    throw new BlobCorruptError(hash, path, `zstd: ${(cause as Error).message}`, { cause });
  }
  if (declared !== 'unknown' && bytes.byteLength !== declared) {
    throw new BlobCorruptError(
      hash,
      path,
      `decompressed to ${bytes.byteLength} bytes, the frame says ${declared}`,
    );
  }
  const actual = sha256Hex(bytes);
  if (actual !== hex) throw new BlobCorruptError(hash, path, `its content hashes to sha256:${actual}`);
  return bytes;
}

/**
 * The uncompressed size a zstd frame header declares (RFC 8878 §3.1.1.1): `unknown` when the
 * frame does not record it, `invalid` when this is not the start of a zstd frame.
 */
export function frameContentSize(header: Uint8Array): number | 'unknown' | 'invalid' {
  if (header.byteLength < 5) return 'invalid';
  const view = new DataView(header.buffer, header.byteOffset, header.byteLength);
  if (view.getUint32(0, true) !== 0xfd2fb528) return 'invalid';
  const descriptor = header[4]!;
  if (descriptor & 0x08) return 'invalid'; // reserved bit
  const singleSegment = (descriptor >> 5) & 1;
  const sizeFlag = descriptor >> 6;
  const sizeBytes = sizeFlag === 0 ? singleSegment : 1 << sizeFlag;
  if (sizeBytes === 0) return 'unknown';
  const at = 5 + (singleSegment ? 0 : 1) + [0, 1, 2, 4][descriptor & 3]!;
  if (header.byteLength < at + sizeBytes) return 'invalid';
  switch (sizeBytes) {
    case 1:
      return view.getUint8(at);
    case 2:
      return view.getUint16(at, true) + 256;
    case 4:
      return view.getUint32(at, true);
    default: {
      const size = view.getBigUint64(at, true);
      return size > BigInt(Number.MAX_SAFE_INTEGER) ? 'invalid' : Number(size);
    }
  }
}
