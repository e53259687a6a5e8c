import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { runBlobStoreContract } from './contract/blob-contract.ts';
import { openFsBlobStore } from './fs-blob-store.ts';

// The BlobStore contract against the filesystem store (its layout-specific tests are in
// fs-blob-store.test.ts and pack-store.test.ts).

const scratch = await mkdtemp(join(tmpdir(), 'rewind-blob-contract-'));
after(() => rm(scratch, { recursive: true, force: true }));
let dirs = 0;

runBlobStoreContract('filesystem', {
  open: () => openFsBlobStore(join(scratch, `store-${dirs++}`)),
  async damage(store, hash, damage) {
    // The contract damages blobs written by put: loose files.
    const hex = hash.slice('sha256:'.length);
    const path = join(store.location, 'sha256', hex.slice(0, 2), hex.slice(2));
    await writeFile(path, damage(new Uint8Array(await readFile(path))));
  },
});
