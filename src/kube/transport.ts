// HTTP to one API server over one pool of kept-alive connections, shared by every request and watch of a facade.
//
// Why not the generated client's own path: @kubernetes/client-node (through node-fetch) set up TLS for every request,
// building a new SecureContext (parsing the client key again) and doing a new handshake each time; in a profile of a
// claim burst that was about half of the controller's CPU, and the typed (de)serialization of every body another
// large share. Here the kubeconfig's CA, client certificate and key become one SecureContext, the agent keeps
// connections open (one handshake per connection, not per request), and bodies are plain JSON both ways: the
// controller reads and writes the API's JSON shapes, never client-node's model classes. KubeConfig still does what
// it is good at: reading kubeconfig files, in-cluster config and the credential plugins (exec, token files).
import { type Agent as HttpAgent, Agent as PlainAgent, request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { createSecureContext } from 'node:tls';
import type { KubeConfig } from '@kubernetes/client-node';
import { onAbort } from './abort.js';

export interface TransportOptions {
  /** Connections kept open at most (watches hold one each for as long as they run). */
  maxSockets: number;
  /** How long credentials from kubeconfig (tokens, exec plugins, certificate files) are reused before being read again. */
  credentialsTtlMs?: number;
}

/** A response with a status other than 2xx: `code` and `body` as toKubeApiError reads them. */
export class HttpStatusError extends Error {
  override readonly name = 'HttpStatusError';
  constructor(
    readonly code: number,
    readonly body: string,
  ) {
    super(`HTTP ${code}`);
  }
}

/** The request ran past its deadline (name as AbortSignal.timeout's, which toKubeApiError maps to a Timeout). */
export class RequestTimeoutError extends Error {
  override readonly name = 'TimeoutError';
}

export interface RequestSpec {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  path: string;
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  contentType?: string;
  signal?: AbortSignal;
  timeoutMs: number;
}

interface Connection {
  agent: HttpAgent;
  request: typeof httpRequest;
  headers: Record<string, string>;
  /** What the TLS material was built from: a rotated certificate file makes a new agent. */
  material: string;
  at: number;
}

const DEFAULT_CREDENTIALS_TTL_MS = 60_000;

export class KubeTransport {
  private readonly server: URL;
  private current: Connection | undefined;
  private refreshing: Promise<Connection> | undefined;

  constructor(
    private readonly kubeConfig: KubeConfig,
    private readonly options: TransportOptions,
  ) {
    const cluster = kubeConfig.getCurrentCluster();
    if (cluster === null) throw new Error('kubeconfig: no current cluster');
    this.server = new URL(cluster.server);
    if (this.server.protocol === 'http:' && cluster.skipTLSVerify !== true) {
      throw new Error('kubeconfig: plain HTTP to the API server only with insecure-skip-tls-verify');
    }
  }

  /** JSON in, JSON out. Rejects with HttpStatusError (non-2xx), RequestTimeoutError, the caller's abort reason, or a socket error. */
  async request(spec: RequestSpec): Promise<unknown> {
    const connection = await this.connection();
    const payload = spec.body === undefined ? undefined : Buffer.from(JSON.stringify(spec.body));
    return new Promise((resolve, reject) => {
      let settled = false;
      // Assigned below; finish may run before then (a signal that aborts at once), so never a const in its TDZ.
      let unsubscribe = (): void => {};
      let timer: NodeJS.Timeout | undefined;
      const finish = (error: unknown, value?: unknown): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        unsubscribe();
        if (error === undefined) resolve(value);
        else reject(error);
      };
      const req = connection.request(this.requestOptions(connection, spec, payload), (res) => {
        readBody(res).then((text) => {
          const status = res.statusCode ?? 0;
          if (status < 200 || status >= 300) return finish(new HttpStatusError(status, text));
          try {
            finish(undefined, text === '' ? undefined : JSON.parse(text));
          } catch (error) {
            finish(error);
          }
        }, (error: unknown) => finish(error));
      });
      // Before anything can destroy the request: an 'error' event nobody listens to ends the process.
      req.on('error', (error) => finish(error));
      timer = setTimeout(() => {
        const error = new RequestTimeoutError(`no answer within ${spec.timeoutMs} ms`);
        req.destroy(error);
        finish(error);
      }, spec.timeoutMs);
      if (spec.signal !== undefined) {
        const signal = spec.signal;
        unsubscribe = onAbort(signal, () => {
          const reason = signal.reason instanceof Error ? signal.reason : new Error('aborted');
          req.destroy(reason);
          finish(reason);
        });
      }
      if (settled) return;
      req.end(payload);
    });
  }

  /**
   * A streaming GET (watch): each newline-terminated JSON object is handed to onObject as parsed. Resolves when the
   * server ends the stream or signal aborts; rejects with HttpStatusError when refused, or with a socket error.
   */
  async stream(path: string, query: RequestSpec['query'], onObject: (object: unknown) => void, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return;
    const connection = await this.connection();
    await new Promise<void>((resolve, reject) => {
      let settled = false;
      // As in request(): finish may run before onAbort returns.
      let unsubscribe = (): void => {};
      const finish = (error?: unknown): void => {
        if (settled) return;
        settled = true;
        unsubscribe();
        if (error === undefined || signal.aborted) resolve();
        else reject(error);
      };
      const req = connection.request(this.requestOptions(connection, { method: 'GET', path, query, timeoutMs: 0 }, undefined), (res) => {
        const status = res.statusCode ?? 0;
        if (status < 200 || status >= 300) {
          readBody(res).then((text) => finish(new HttpStatusError(status, text)), finish);
          return;
        }
        res.setEncoding('utf8');
        let pending = '';
        res.on('data', (chunk: string) => {
          pending += chunk;
          let newline = pending.indexOf('\n');
          while (newline >= 0 && !settled) {
            const line = pending.slice(0, newline);
            pending = pending.slice(newline + 1);
            if (line.trim() !== '') {
              try {
                onObject(JSON.parse(line));
              } catch (error) {
                req.destroy();
                finish(error);
                return;
              }
            }
            newline = pending.indexOf('\n');
          }
        });
        res.on('end', () => finish());
        res.on('error', finish);
        res.on('aborted', () => finish(new Error('watch stream aborted by the server')));
      });
      req.on('error', finish);
      unsubscribe = onAbort(signal, () => {
        req.destroy();
        finish();
      });
      if (settled) return;
      req.end();
    });
  }

  /** Closes every kept-alive connection (watches in flight end). */
  close(): void {
    this.current?.agent.destroy();
  }

  private requestOptions(connection: Connection, spec: Omit<RequestSpec, 'signal' | 'body'>, payload: Buffer | undefined): RequestOptions {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(spec.query ?? {})) if (value !== undefined) params.set(key, String(value));
    const search = params.size === 0 ? '' : `?${params.toString()}`;
    const headers: Record<string, string | number> = { ...connection.headers, Accept: 'application/json' };
    if (payload !== undefined) {
      headers['Content-Type'] = spec.contentType ?? 'application/json';
      headers['Content-Length'] = payload.length;
    }
    const base = this.server.pathname.replace(/\/$/, '');
    return {
      agent: connection.agent,
      method: spec.method,
      protocol: this.server.protocol,
      hostname: this.server.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: this.server.port === '' ? (this.server.protocol === 'https:' ? 443 : 80) : Number(this.server.port),
      path: `${base}${spec.path}${search}`,
      headers,
    };
  }

  /** The agent and headers to use now; credentials are read again after their TTL (tokens and certificates rotate). */
  private async connection(): Promise<Connection> {
    const ttl = this.options.credentialsTtlMs ?? DEFAULT_CREDENTIALS_TTL_MS;
    const current = this.current;
    if (current !== undefined && Date.now() - current.at < ttl) return current;
    this.refreshing ??= this.readCredentials(current).finally(() => {
      this.refreshing = undefined;
    });
    // A refresh that fails keeps the credentials we have, if any: the next request tries again.
    if (current !== undefined) return this.refreshing.catch(() => current);
    return this.refreshing;
  }

  private async readCredentials(previous: Connection | undefined): Promise<Connection> {
    const options: RequestOptions & { ca?: Buffer; cert?: Buffer; key?: Buffer; rejectUnauthorized?: boolean; servername?: string } = {};
    await this.kubeConfig.applyToHTTPSOptions(options as never);
    const headers: Record<string, string> = { 'User-Agent': 'rbd-provisioner' };
    for (const [name, value] of Object.entries(options.headers ?? {})) if (value !== undefined) headers[name] = String(value);
    if (options.auth !== undefined && options.auth !== null) headers['Authorization'] = `Basic ${Buffer.from(options.auth).toString('base64')}`;
    const material = JSON.stringify([options.ca?.toString('base64'), options.cert?.toString('base64'), options.key?.toString('base64'), options.rejectUnauthorized, options.servername]);
    if (previous !== undefined && previous.material === material) {
      const refreshed = { ...previous, headers, at: Date.now() };
      this.current = refreshed;
      return refreshed;
    }
    const agentOptions = { keepAlive: true, keepAliveMsecs: 30_000, maxSockets: this.options.maxSockets, maxFreeSockets: this.options.maxSockets, scheduling: 'lifo' as const };
    let connection: Connection;
    if (this.server.protocol === 'https:') {
      // One SecureContext for every connection: the key is parsed once.
      const secureContext = createSecureContext({
        ...(options.ca === undefined ? {} : { ca: options.ca }),
        ...(options.cert === undefined ? {} : { cert: options.cert }),
        ...(options.key === undefined ? {} : { key: options.key }),
      });
      const agent = new HttpsAgent({
        ...agentOptions,
        secureContext,
        ...(options.rejectUnauthorized === undefined ? {} : { rejectUnauthorized: options.rejectUnauthorized }),
        ...(options.servername === undefined ? {} : { servername: options.servername }),
      });
      connection = { agent, request: httpsRequest, headers, material, at: Date.now() };
    } else {
      connection = { agent: new PlainAgent(agentOptions), request: httpRequest, headers, material, at: Date.now() };
    }
    this.current = connection;
    // Requests and watches in flight on the old agent finish there; its idle connections close.
    if (previous !== undefined) setTimeout(() => previous.agent.destroy(), 10 * 60_000).unref();
    return connection;
  }
}

function readBody(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (chunk: Buffer) => chunks.push(chunk));
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.on('error', reject);
    res.on('aborted', () => reject(new Error('response aborted')));
  });
}
