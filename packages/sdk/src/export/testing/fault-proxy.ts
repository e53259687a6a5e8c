import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Fault, ScriptedRequest } from './ingest-server.ts';

// A fault-injecting HTTP proxy for tests: put it between the exporter and any ingest server (the
// scripted one, or the real `rewind serve`) to cut connections after the server committed, send
// a request several times, answer a status of its own, or hang — per request, by script.

export type ProxyAction =
  | Fault
  /** Forward the request this many times (one after the other) and relay the last answer. */
  | { repeat: number; drop?: 'after' };

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export class FaultProxy {
  readonly #upstream: URL;
  readonly #script: (request: ScriptedRequest) => ProxyAction | undefined;
  readonly #server: http.Server;
  readonly #sockets = new Set<Socket>();
  readonly #attempts = new Map<string, number>();
  readonly #agent = new http.Agent({ keepAlive: true });
  /** Requests seen, with what the proxy did. */
  readonly log: Array<{ method: string; path: string; action: string }> = [];
  #url = '';

  constructor(upstream: string, script: (request: ScriptedRequest) => ProxyAction | undefined) {
    this.#upstream = new URL(upstream);
    this.#script = script;
    this.#server = http.createServer((req, res) => {
      this.#handle(req, res).catch(() => req.socket.destroy());
    });
    this.#server.on('connection', (socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
  }

  get url(): string {
    return this.#url;
  }

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    this.#url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
    return this.#url;
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    this.#agent.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #forward(req: http.IncomingMessage, body: Buffer): Promise<Answer> {
    const headers = { ...req.headers };
    delete headers.host;
    delete headers.connection;
    return new Promise((resolve, reject) => {
      const out = http.request(
        new URL(req.url ?? '/', this.#upstream),
        { method: req.method, headers, agent: this.#agent },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 502, headers: res.headers, body: Buffer.concat(chunks) }),
          );
          res.on('error', reject);
        },
      );
      out.on('error', reject);
      out.end(body);
    });
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const path = (req.url ?? '/').split('?')[0]!;
    const key = `${method} ${path}`;
    const attempt = (this.#attempts.get(key) ?? 0) + 1;
    this.#attempts.set(key, attempt);
    const action = this.#script({ method, path, attempt, headers: req.headers });
    const note = (what: string): void => {
      this.log.push({ method, path, action: what });
    };
    if (action !== undefined && 'hang' in action) {
      note('hang');
      req.resume();
      return;
    }
    if (action !== undefined && 'drop' in action && action.drop === 'before') {
      note('drop before');
      req.socket.destroy();
      return;
    }
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    if (action !== undefined && 'status' in action) {
      note(`status ${action.status}`);
      res.writeHead(action.status, { 'content-type': 'application/json', ...action.headers });
      res.end(
        action.body ?? JSON.stringify({ error: { code: 'proxy', message: `injected ${action.status}` } }),
      );
      return;
    }
    const times = action !== undefined && 'repeat' in action ? Math.max(1, action.repeat) : 1;
    let answer: Answer | undefined;
    try {
      for (let i = 0; i < times; i++) answer = await this.#forward(req, body);
    } catch {
      note('upstream down');
      req.socket.destroy();
      return;
    }
    if (action !== undefined && 'drop' in action && action.drop === 'after') {
      note(times > 1 ? `repeat ${times}, drop after` : 'drop after');
      req.socket.destroy();
      return;
    }
    note(times > 1 ? `repeat ${times}` : 'forward');
    const headers = { ...answer!.headers };
    delete headers.connection;
    delete headers['keep-alive'];
    delete headers['transfer-encoding'];
    res.writeHead(answer!.status, headers);
    res.end(answer!.body);
  }
}

export async function startFaultProxy(
  upstream: string,
  script: (request: ScriptedRequest) => ProxyAction | undefined,
): Promise<FaultProxy> {
  const proxy = new FaultProxy(upstream, script);
  await proxy.start();
  return proxy;
}
