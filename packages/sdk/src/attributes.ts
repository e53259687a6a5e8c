import { readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Attributes } from '@rewind/schema';

// Run attributes read once per recorder, cheaply (a few small file reads, no child process):
// the git commit of the working directory, the nearest package.json's name and version, and
// NODE_ENV.

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** The directory holding git's files for `cwd` (following a worktree's `.git` file), if any. */
function findGitDir(cwd: string): { gitDir: string; commonDir: string } | undefined {
  let dir = resolve(cwd);
  for (;;) {
    const dotGit = join(dir, '.git');
    if (isDirectory(dotGit)) return { gitDir: dotGit, commonDir: dotGit };
    const pointer = readText(dotGit);
    const match = pointer === undefined ? null : /^gitdir:\s*(.+)\s*$/m.exec(pointer);
    if (match !== null) {
      const gitDir = resolve(dir, match[1]!.trim());
      const common = readText(join(gitDir, 'commondir'));
      return { gitDir, commonDir: common === undefined ? gitDir : resolve(gitDir, common.trim()) };
    }
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

const SHA = /^[0-9a-f]{40}(?:[0-9a-f]{24})?$/;

/** The commit checked out in `cwd`'s repository, read from .git without running git. */
export function gitSha(cwd: string): string | undefined {
  const found = findGitDir(cwd);
  if (found === undefined) return undefined;
  const head = readText(join(found.gitDir, 'HEAD'))?.trim();
  if (head === undefined) return undefined;
  if (SHA.test(head)) return head;
  const ref = /^ref:\s*(\S+)$/.exec(head)?.[1];
  if (ref === undefined || ref.includes('..')) return undefined;
  for (const dir of [found.gitDir, found.commonDir]) {
    const loose = readText(join(dir, ref))?.trim();
    if (loose !== undefined && SHA.test(loose)) return loose;
  }
  const packed = readText(join(found.commonDir, 'packed-refs'));
  if (packed === undefined) return undefined;
  for (const line of packed.split('\n')) {
    const [sha, name] = line.trim().split(' ');
    if (name === ref && sha !== undefined && SHA.test(sha)) return sha;
  }
  return undefined;
}

/** Name and version of the nearest package.json at or above `cwd`. */
export function packageInfo(cwd: string): { name?: string; version?: string } {
  let dir = resolve(cwd);
  for (;;) {
    const text = readText(join(dir, 'package.json'));
    if (text !== undefined) {
      try {
        const manifest = JSON.parse(text) as { name?: unknown; version?: unknown };
        const info: { name?: string; version?: string } = {};
        if (typeof manifest.name === 'string') info.name = manifest.name;
        if (typeof manifest.version === 'string') info.version = manifest.version;
        return info;
      } catch {
        return {};
      }
    }
    const parent = dirname(dir);
    if (parent === dir) return {};
    dir = parent;
  }
}

/** The attributes every run of a recorder carries (before the user's own). */
export function environmentAttributes(cwd: string, env: Record<string, string | undefined>): Attributes {
  const attributes: Attributes = {};
  const sha = gitSha(cwd);
  if (sha !== undefined) attributes['git.sha'] = sha;
  const pkg = packageInfo(cwd);
  if (pkg.name !== undefined) attributes['package.name'] = pkg.name;
  if (pkg.version !== undefined) attributes['package.version'] = pkg.version;
  if (env.NODE_ENV !== undefined && env.NODE_ENV !== '') attributes['node.env'] = env.NODE_ENV;
  return attributes;
}
