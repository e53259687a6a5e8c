// Redaction end to end (issue 5, SPEC §6): secrets and PII planted in a model prompt, a streamed
// model response (a token split across stream chunks), a tool output, a retrieved document, a
// thrown error, the run's input and output and an attribute — through the real `openai` client
// against the scripted provider — must not leave one of their bytes anywhere on disk (SQLite
// database and WAL, blobs raw and decompressed through the BlobStore, the exporter's spool, the
// server's logs) nor in any API response. Once with a local store, once through `rewind serve`
// with the HTTP exporter (and its spool, filled while the server is down). Then: `hash` gives
// equal pseudonyms across runs, and a `seal`ed field is stored encrypted and shown sealed by
// `rewind show` without the key, opened with REWIND_PROJECT_KEY.
// (Exported bundles do not exist yet: nothing to check there.)
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Recorder } from '@rewind/sdk';
import { wrapOpenAI } from '@rewind/sdk/openai';
import { startServer } from '@rewind/server';
import { openStore } from '@rewind/store';
import { type ScriptedProvider, startScriptedProvider } from '@rewind/testkit';
import OpenAI from 'openai';
import { runRewind, startServe } from './rewind-cli.ts';

const root = mkdtempSync(join(tmpdir(), 'rewind-redaction-e2e-'));
after(() => rmSync(root, { recursive: true, force: true }));

// Values from the labelled corpus (right formats and checksums), one per place they are planted.
const corpus = new Map<string, string>();
for (const line of readFileSync(
  new URL('../fixtures/redaction/positives.jsonl', import.meta.url),
  'utf8',
).split('\n')) {
  if (line.trim() === '') continue;
  const item = JSON.parse(line) as { id: string; text: string; start: number; end: number };
  corpus.set(item.id, item.text.slice(item.start, item.end));
}
function planted(id: string): string {
  const value = corpus.get(id);
  assert.ok(value !== undefined, `corpus positive ${id}`);
  return value;
}

const PLANTED = {
  prompt: planted('openai-0002'),
  streamed: planted('github-0001'), // in streamed tool-call arguments: split into 8-character chunks
  streamedText: planted('email-0003'),
  toolOutput: planted('stripe-0001'),
  retrieved: planted('aws_access_key-0001'),
  retrievedPii: planted('us_ssn-0001'),
  thrown: planted('anthropic-0001'),
  runError: planted('slack-0001'),
  input: planted('email-0001'),
  inputPhone: planted('phone-0001'),
  output: planted('credit_card-0001'),
  attribute: planted('iban-0001'),
  attributeJwt: planted('jwt-0001'),
};

/** Every value, every 12-character window of the long ones, and every 6-character window of the streamed token must be absent. */
const NEEDLES: string[] = (() => {
  const needles = new Set<string>();
  for (const value of Object.values(PLANTED)) {
    needles.add(value);
    const core = value.length > 24 ? value.slice(12) : '';
    for (let i = 0; i + 12 <= core.length; i++) needles.add(core.slice(i, i + 12));
  }
  // the streamed token arrives in 8-character pieces: no piece of it may survive either
  const streamed = PLANTED.streamed.slice('github_pat_'.length);
  for (let i = 0; i + 6 <= streamed.length; i++) needles.add(streamed.slice(i, i + 6));
  return [...needles];
})();

function leaksIn(text: string | Buffer, where: string): string[] {
  const haystack = typeof text === 'string' ? text : text.toString('latin1');
  const found: string[] = [];
  for (const needle of NEEDLES)
    if (haystack.includes(needle)) found.push(`${where}: ${needle.slice(0, 16)}…`);
  // JSON-escaped forms as well (an escaped quote or newline inside a stored string)
  for (const value of Object.values(PLANTED)) {
    const escaped = JSON.stringify(value).slice(1, -1);
    if (escaped !== value && haystack.includes(escaped))
      found.push(`${where}: (escaped) ${value.slice(0, 16)}…`);
  }
  return found;
}

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...filesUnder(path));
    else out.push(path);
  }
  return out;
}

/** Raw bytes of every file under `dir` (SQLite db and WAL, loose blobs, packs, spool files, logs). */
function diskLeaks(dir: string): string[] {
  return filesUnder(dir).flatMap((file) => leaksIn(readFileSync(file), file.slice(root.length)));
}

/** Every blob of the store, decompressed, read through the BlobStore. */
async function blobLeaks(storeDir: string): Promise<{ leaks: string[]; count: number; texts: string }> {
  const store = await openStore(storeDir);
  try {
    const leaks: string[] = [];
    let count = 0;
    let texts = '';
    for await (const hash of store.blobs.list()) {
      const text = Buffer.from(await store.blobs.get(hash)).toString('utf8');
      leaks.push(...leaksIn(text, `blob ${hash}`));
      texts += `${text}\n`;
      count++;
    }
    return { leaks, count, texts };
  } finally {
    await store.close();
  }
}

/** GETs every read route for every run, and every blob the events reference. */
async function apiLeaks(url: string): Promise<{ leaks: string[]; bodies: string }> {
  const leaks: string[] = [];
  let bodies = '';
  const get = async (path: string): Promise<string> => {
    const response = await fetch(`${url}${path}`);
    assert.equal(response.status, 200, `${path}: ${await response.clone().text()}`);
    const text = Buffer.from(await response.arrayBuffer()).toString('utf8');
    leaks.push(...leaksIn(text, `GET ${path}`));
    bodies += `${text}\n`;
    return text;
  };
  const runs = JSON.parse(await get('/v1/runs?limit=100')) as { items: { id: string }[] };
  assert.ok(runs.items.length >= 2);
  const hashes = new Set<string>();
  for (const { id } of runs.items) {
    await get(`/v1/runs/${id}`);
    const steps = JSON.parse(await get(`/v1/runs/${id}/steps?limit=1000`)) as { items: { seq: number }[] };
    for (const { seq } of steps.items) await get(`/v1/runs/${id}/steps/${seq}`);
    const events = await get(`/v1/runs/${id}/events?limit=1000`);
    // blob references: {"hash": …} and their parts (requestHash/responseHash are not blobs)
    for (const match of events.matchAll(/"hash":"(sha256:[0-9a-f]{64})"/g)) hashes.add(match[1]!);
    for (const match of events.matchAll(/"parts":\[([^\]]*)\]/g))
      for (const part of match[1]!.matchAll(/sha256:[0-9a-f]{64}/g)) hashes.add(part[0]);
  }
  for (const hash of hashes) await get(`/v1/blobs/sha256/${hash.slice(7)}`);
  return { leaks, bodies };
}

const POLICY = { version: 1, detectors: { pii: 'mask' } };

let provider: ScriptedProvider;
before(async () => {
  provider = await startScriptedProvider({
    argumentChunkSize: 8,
    rules: [
      {
        name: 'the streamed answer: text with an email and a tool call whose arguments carry a token',
        when: { api: 'openai.chat', stream: true },
        reply: {
          text: `I will write to ${PLANTED.streamedText} today.`,
          toolCalls: [{ name: 'save_token', arguments: { value: PLANTED.streamed } }],
        },
      },
      { name: 'plain answer', when: { api: 'openai.chat', stream: false }, reply: { text: 'Noted.' } },
    ],
  });
});
after(() => provider.close());

/** The planted agent: every place a secret can enter a run. Returns the number of stream chunks seen. */
async function plantedRuns(recorder: Recorder): Promise<void> {
  const openai = wrapOpenAI(new OpenAI({ baseURL: provider.openaiBaseURL, apiKey: 'test', maxRetries: 0 }));
  const search = recorder.retriever('kb.search', async (query: string) => [
    {
      id: 'doc-1',
      pageContent: `For ${query}: use ${PLANTED.retrieved}, customer SSN ${PLANTED.retrievedPii}`,
    },
  ]);
  const lookup = recorder.tool('crm.lookup', async (id: string) => ({
    id,
    config: `stripe ${PLANTED.toolOutput}`,
  }));
  const failing = recorder.tool('vault.open', async () => {
    throw new Error(`vault refused key ${PLANTED.thrown}`);
  });
  const support = recorder.agent(
    'support',
    async (input: { email: string; phone: string; question: string }) => {
      const docs = await search(input.question);
      const record = await lookup('A-1');
      try {
        await failing();
      } catch {}
      await openai.chat.completions.create({
        model: 'gpt-test',
        messages: [
          { role: 'system', content: `Context: ${docs[0]!.pageContent} ${record.config}` },
          { role: 'user', content: `My key is ${PLANTED.prompt}, reach me at ${input.email}` },
        ],
      });
      const stream = await openai.chat.completions.create({
        model: 'gpt-test',
        stream: true,
        messages: [{ role: 'user', content: 'Save my token.' }],
      });
      let chunks = 0;
      let args = '';
      for await (const chunk of stream) {
        chunks++;
        args += chunk.choices[0]?.delta.tool_calls?.[0]?.function?.arguments ?? '';
      }
      assert.ok(chunks > 5);
      // the agent itself gets the real values: redaction is only for what is recorded
      assert.equal((JSON.parse(args) as { value: string }).value, PLANTED.streamed);
      return { answer: `charged card ${PLANTED.output}` };
    },
    { attributes: { iban: PLANTED.attribute, session: PLANTED.attributeJwt } },
  );
  const result = await support({ email: PLANTED.input, phone: PLANTED.inputPhone, question: 'refunds' });
  assert.equal(result.answer, `charged card ${PLANTED.output}`);
  const crashing = recorder.agent('crashing', async () => {
    throw new Error(`webhook ${PLANTED.runError} failed`);
  });
  await assert.rejects(crashing(), /webhook/);
}

/** The redacted run is really there: markers in place of the planted values, all steps recorded. */
function assertRecorded(texts: string, inEvents = true): void {
  const markers = ['openai', 'github', 'email', 'stripe', 'aws_access_key', 'us_ssn', 'phone', 'credit_card'];
  // thrown errors and attributes are in the events (the API's bodies), not in blobs
  if (inEvents) markers.push('anthropic', 'slack', 'iban', 'jwt');
  for (const marker of markers)
    assert.ok(texts.includes(`[REDACTED:${marker}]`), `a [REDACTED:${marker}] marker is stored`);
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

describe('nothing planted survives, anywhere', () => {
  test('a local store: the SQLite database and WAL, the blobs (raw and through the BlobStore), and the API over it', async () => {
    const cwd = join(root, 'local');
    mkdirSync(cwd);
    writeFileSync(join(cwd, 'rewind.policy.json'), JSON.stringify(POLICY));
    const recorder = new Recorder({ cwd, env: {} }); // the policy from ./rewind.policy.json, the store ./.rewind
    await plantedRuns(recorder);
    const flushed = await recorder.flush();
    assert.equal(flushed.dropped, 0);
    assert.deepEqual(diskLeaks(cwd), [], 'while the store is open (WAL present)');
    await recorder.shutdown();
    assert.deepEqual(diskLeaks(cwd), []);
    const blobs = await blobLeaks(join(cwd, '.rewind'));
    assert.deepEqual(blobs.leaks, []);
    assert.ok(blobs.count > 10);
    assertRecorded(blobs.texts, false);
    // the streamed step kept its chunks (the token was split across them), redacted
    assert.match(blobs.texts, /"chunks":\[/);
    const store = await openStore(join(cwd, '.rewind'));
    const server = await startServer({ store, port: 0, log: false });
    try {
      const api = await apiLeaks(server.url);
      assert.deepEqual(api.leaks, []);
      assertRecorded(api.bodies);
    } finally {
      await server.close();
      await store.close();
    }
    const shown = await runRewind(['runs', '--json'], { cwd });
    assert.equal(shown.code, 0, shown.stderr);
    for (const { id } of JSON.parse(shown.stdout) as { id: string }[]) {
      const show = await runRewind(['show', id, '--json'], { cwd });
      assert.equal(show.code, 0, show.stderr);
      assert.deepEqual(leaksIn(show.stdout, `rewind show ${id}`), []);
    }
  });

  test('through rewind serve with the HTTP exporter: the spool (filled while the server is down), the server logs, the store and the API', async () => {
    const cwd = join(root, 'served');
    mkdirSync(cwd);
    const policyFile = join(cwd, 'policy.json');
    writeFileSync(policyFile, JSON.stringify(POLICY));
    const spoolDir = join(cwd, 'spool');
    const port = await freePort();
    const endpoint = `http://127.0.0.1:${port}`;
    // 1. the server is down: what the agent records waits in the spool — redacted
    const offline = new Recorder({
      cwd,
      env: {},
      policy: policyFile,
      endpoint,
      spoolDir,
      onError: () => {},
      exporter: { requestTimeoutMs: 500 },
    });
    await plantedRuns(offline);
    const down = await offline.shutdown({ timeoutMs: 3000 });
    assert.ok(down.spooled > 0, `events were spooled (${JSON.stringify(down)})`);
    const spoolBytes = filesUnder(spoolDir).reduce((total, file) => total + statSync(file).size, 0);
    assert.ok(spoolBytes > 1000, 'the spool holds the runs');
    assert.deepEqual(diskLeaks(spoolDir), [], 'the spool');
    // 2. the server comes up (same policy, --policy) and a new recorder delivers the spool and records again
    const storeDir = join(cwd, 'server-store');
    const serve = await startServe(['--store', storeDir, '--policy', policyFile, '--workers', '0'], {
      cwd,
      port,
    });
    try {
      const online = new Recorder({ cwd, env: {}, policy: policyFile, endpoint, spoolDir });
      await plantedRuns(online);
      const flushed = await online.flush({ timeoutMs: 20_000 });
      assert.equal(flushed.dropped, 0);
      assert.equal(flushed.timedOut, false);
      await online.shutdown();
      assert.equal(online.exportStats()!.recovered.delivered > 0, true, 'the spooled events were delivered');
      assert.deepEqual(diskLeaks(cwd), [], 'store (open, WAL present), spool');
      const api = await apiLeaks(serve.url);
      assert.deepEqual(api.leaks, []);
      assertRecorded(api.bodies);
      const runs = JSON.parse(api.bodies.split('\n')[0]!) as { items: unknown[] };
      assert.equal(runs.items.length, 4, 'both recorders’ runs are stored');
    } finally {
      serve.child.kill('SIGTERM');
      await serve.exited;
    }
    assert.deepEqual(leaksIn(serve.log.join(''), 'server log'), []);
    assert.deepEqual(diskLeaks(cwd), []);
    const blobs = await blobLeaks(storeDir);
    assert.deepEqual(blobs.leaks, []);
    assertRecorded(blobs.texts, false);
  });
});

test('rewind serve refuses an invalid policy (exit 2, the message names the rule) and a keyed policy without a key', async () => {
  const cwd = join(root, 'bad-policy');
  mkdirSync(cwd);
  writeFileSync(join(cwd, 'typo.json'), JSON.stringify({ version: 1, detectors: { emial: 'mask' } }));
  writeFileSync(join(cwd, 'keyed.json'), JSON.stringify({ version: 1, detectors: { email: 'hash' } }));
  const typo = await runRewind(['serve', '--port', '0', '--policy', 'typo.json'], { cwd });
  assert.equal(typo.code, 2);
  assert.match(typo.stderr, /detectors\.emial: no such detector \(did you mean email\?\)/);
  const keyed = await runRewind(['serve', '--port', '0', '--policy', 'keyed.json'], { cwd });
  assert.equal(keyed.code, 2);
  assert.match(keyed.stderr, /REWIND_PROJECT_KEY/);
});

describe('keyed actions', () => {
  test('hash: two runs mentioning the same email store the same pseudonym, and never the email', async () => {
    const cwd = join(root, 'hash');
    mkdirSync(cwd);
    const key = randomBytes(32).toString('base64');
    const recorder = new Recorder({
      cwd,
      env: { REWIND_PROJECT_KEY: key },
      policy: { version: 1, detectors: { email: 'hash' } },
    });
    const agent = recorder.agent('mailer', async (text: string) => `sent: ${text}`);
    await agent(`first mail to ${PLANTED.input}`);
    await agent(`second mail, again to ${PLANTED.input}`);
    await recorder.shutdown();
    const { texts, leaks } = await blobLeaks(join(cwd, '.rewind'));
    assert.deepEqual(leaks, []);
    const pseudonyms = new Set(texts.match(/«email:[0-9a-f]{12}»/g));
    assert.equal(pseudonyms.size, 1, texts);
    assert.ok((texts.match(/«email:[0-9a-f]{12}»/g) ?? []).length >= 4, 'input and output of both runs');
  });

  test('seal: the field is stored encrypted; rewind show shows it sealed without the key and opens it with REWIND_PROJECT_KEY', async () => {
    const cwd = join(root, 'seal');
    mkdirSync(cwd);
    const key = randomBytes(32).toString('base64');
    const ssn = PLANTED.retrievedPii;
    const recorder = new Recorder({
      cwd,
      env: { REWIND_PROJECT_KEY: key },
      policy: { version: 1, rules: [{ path: 'tool:crm.lookup.response.output.ssn', action: 'seal' }] },
    });
    const lookup = recorder.tool('crm.lookup', async (id: string) => ({ id, ssn }));
    await recorder.agent('crm', async () => {
      await lookup('C-7');
      return 'ok';
    })();
    await recorder.shutdown();
    assert.deepEqual(
      diskLeaks(cwd).filter((leak) => leak.includes(ssn.slice(0, 10))),
      [],
    );
    const runs = await runRewind(['runs', '--json'], { cwd });
    const runId = (JSON.parse(runs.stdout) as { id: string }[])[0]!.id;
    const sealed = await runRewind(['show', runId, '--json'], { cwd });
    assert.equal(sealed.code, 0, sealed.stderr);
    assert.equal(sealed.stdout.includes(ssn), false);
    assert.match(sealed.stdout, /«sealed:v1:ssn:[0-9a-f]{8}:/);
    const text = await runRewind(['show', runId], { cwd });
    assert.match(text.stdout, /«sealed:v1:ssn:/);
    const opened = await runRewind(['show', runId, '--json'], { cwd, env: { REWIND_PROJECT_KEY: key } });
    assert.equal(opened.code, 0, opened.stderr);
    assert.ok(opened.stdout.includes(ssn), 'opened with the key');
    const wrongKey = await runRewind(['show', runId, '--json'], {
      cwd,
      env: { REWIND_PROJECT_KEY: randomBytes(32).toString('base64') },
    });
    assert.equal(wrongKey.stdout.includes(ssn), false, 'another key leaves it sealed');
  });
});
