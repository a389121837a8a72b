// /healthz (the process and its event loop are alive), /readyz (informers synced and the API server answering; a
// healthy standby is ready too, so a rollout does not wait for leadership), /metrics (prom-client).
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { parseHttpAddress } from './config.js';
import { type Logger, describeError } from './logger.js';

export interface HttpServerOptions {
  /** "host:port", ":port" or "[v6]:port". */
  address: string;
  registry: Registry;
  /** Why this replica is not ready, or undefined when it is. */
  notReadyBecause: () => string | undefined;
  logger: Logger;
  /** /healthz fails when the event loop has not turned for this long. */
  heartbeatStaleMs?: number;
}

export interface HttpServer {
  readonly port: number;
  close(): Promise<void>;
}

const HEARTBEAT_MS = 1000;

export async function startHttpServer(options: HttpServerOptions): Promise<HttpServer> {
  const parsed = parseHttpAddress(options.address);
  if (parsed === undefined) throw new Error(`invalid HTTP address "${options.address}"`);
  const staleMs = options.heartbeatStaleMs ?? 10_000;
  let lastBeat = performance.now();
  const heartbeat = setInterval(() => {
    lastBeat = performance.now();
  }, HEARTBEAT_MS);
  heartbeat.unref();

  const reply = (res: ServerResponse, status: number, body: string, contentType = 'text/plain; charset=utf-8'): void => {
    res.writeHead(status, { 'Content-Type': contentType, 'Cache-Control': 'no-store' });
    res.end(body);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      reply(res, 405, 'method not allowed\n');
      return;
    }
    const path = (req.url ?? '/').split('?')[0];
    switch (path) {
      case '/healthz': {
        const sinceBeat = performance.now() - lastBeat;
        if (sinceBeat > staleMs) reply(res, 503, `event loop stalled for ${Math.round(sinceBeat)} ms\n`);
        else reply(res, 200, 'ok\n');
        return;
      }
      case '/readyz':
      {
        const why = options.notReadyBecause();
        if (why === undefined) reply(res, 200, 'ok\n');
        else reply(res, 503, `${why}\n`);
        return;
      }
      case '/metrics':
        reply(res, 200, await options.registry.metrics(), options.registry.contentType);
        return;
      default:
        reply(res, 404, 'not found\n');
    }
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      options.logger.error('HTTP handler failed', { path: req.url, error: describeError(error) });
      if (!res.headersSent) reply(res, 500, 'internal error\n');
      else res.end();
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port: parsed.port, ...(parsed.host === undefined ? {} : { host: parsed.host }) }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  options.logger.info('serving /healthz, /readyz and /metrics', { address: options.address, port });

  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        clearInterval(heartbeat);
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
