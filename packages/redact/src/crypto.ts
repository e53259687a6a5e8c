import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { RedactionKeyError } from './errors.ts';

// The project key (docs/redaction.md, "The project key"): 32 random bytes, written as base64 or
// base64url (44 or 43 characters), e.g. from `openssl rand -base64 32`. Two subkeys are derived
// from it with HKDF-SHA256 so that no key serves two primitives: one for HMAC pseudonyms, one for
// AES-256-GCM sealing.

export const KEY_ENV = 'REWIND_PROJECT_KEY';

export interface ProjectKeys {
  hash: Buffer;
  seal: Buffer;
  /** 8 hex digits naming the key (not secret): written into sealed values so a wrong key is told apart. */
  id: string;
}

/** Reads a project key written as base64 or base64url of 32 bytes. */
export function parseProjectKey(text: string, where: string): Buffer {
  const trimmed = text.trim();
  if (!/^[A-Za-z0-9+/_-]{43}={0,1}$/.test(trimmed)) {
    throw new RedactionKeyError(
      `${where} must be 32 random bytes in base64 (44 characters), e.g. the output of \`openssl rand -base64 32\`; got ${trimmed.length} characters`,
    );
  }
  const bytes = Buffer.from(trimmed.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  if (bytes.length !== 32)
    throw new RedactionKeyError(`${where} must decode to 32 bytes, got ${bytes.length}`);
  return bytes;
}

export function deriveKeys(key: Uint8Array): ProjectKeys {
  const derive = (info: string) => Buffer.from(hkdfSync('sha256', key, 'rewind.redact', info, 32));
  return {
    hash: derive('hash v1'),
    seal: derive('seal v1'),
    id: derive('key id v1').toString('hex').slice(0, 8),
  };
}

/** Hex digits of the pseudonym: 12 (48 bits); see docs/redaction.md for the collision odds. */
export const PSEUDONYM_HEX_DIGITS = 12;

export function pseudonym(keys: ProjectKeys, label: string, value: string): string {
  const digest = createHmac('sha256', keys.hash).update(value, 'utf8').digest('hex');
  return `«${label}:${digest.slice(0, PSEUDONYM_HEX_DIGITS)}»`;
}

// Sealed values: «sealed:v1:<label>:<keyId>:<base64url(nonce ‖ ciphertext ‖ tag)>». The label and
// key id are authenticated (associated data), so neither can be swapped without the open failing.
// The plaintext's first byte says what it holds: `s` a string, `j` a JSON value.
export const SEALED_SOURCE = '«sealed:v1:([a-z0-9_.-]{1,40}):([0-9a-f]{8}):([A-Za-z0-9_-]{40,})»';
export const SEALED_PREFIX = '«sealed:v1:';

export function seal(keys: ProjectKeys, label: string, kind: 's' | 'j', plaintext: string): string {
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', keys.seal, nonce);
  cipher.setAAD(Buffer.from(`${label}:${keys.id}`));
  const body = Buffer.concat([cipher.update(kind + plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
  return `${SEALED_PREFIX}${label}:${keys.id}:${Buffer.concat([nonce, body]).toString('base64url')}»`;
}

/** Opens one sealed token; undefined when the key is another or the token was tampered with. */
export function open(
  keys: ProjectKeys,
  label: string,
  keyId: string,
  data: string,
): { kind: string; text: string } | undefined {
  if (keyId !== keys.id) return undefined;
  const bytes = Buffer.from(data, 'base64url');
  if (bytes.length < 12 + 16 + 1) return undefined;
  try {
    const decipher = createDecipheriv('aes-256-gcm', keys.seal, bytes.subarray(0, 12));
    decipher.setAAD(Buffer.from(`${label}:${keyId}`));
    decipher.setAuthTag(bytes.subarray(bytes.length - 16));
    const text = Buffer.concat([
      decipher.update(bytes.subarray(12, bytes.length - 16)),
      decipher.final(),
    ]).toString('utf8');
    return { kind: text.slice(0, 1), text: text.slice(1) };
  } catch {
    return undefined;
  }
}
