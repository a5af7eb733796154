/**
 * Test-only: a self-hosted Nx remote cache, as Nx documents the protocol (`nx.dev`, "self
 * hosted caching", OpenAPI spec; Nx ≥ 20.8 talks to it when NX_SELF_HOSTED_REMOTE_CACHE_SERVER
 * is set). Entries live in memory.
 *
 *   GET /v1/cache/{hash}  200 + the task's tar archive (application/octet-stream) | 404 not found
 *   PUT /v1/cache/{hash}  200 stored | 409 exists (entries are never overwritten) | 403 read-only
 *                         token; the body is the archive, with Content-Length
 *   both: `Authorization: Bearer <token>`; 401 when it is missing or unknown
 *
 * Every request is recorded so tests can see what Nx asked for.
 */
import * as http from 'http';
import type { AddressInfo } from 'net';

export interface CacheRequest {
  method: string;
  hash: string;
  status: number;
  bytes: number;
}

export interface RemoteCacheServer {
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** hash → archive */
  entries: Map<string, Buffer>;
  requests: CacheRequest[];
  close(): Promise<void>;
}

export interface RemoteCacheOptions {
  /** token that may read and write */
  token: string;
  /** token that may only read (PUT answers 403) */
  readOnlyToken?: string;
  port?: number;
}

const PATH = /^\/v1\/cache\/([A-Za-z0-9_.-]+)$/;

export function startRemoteCache(opts: RemoteCacheOptions): Promise<RemoteCacheServer> {
  const entries = new Map<string, Buffer>();
  const requests: CacheRequest[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const m = PATH.exec(req.url ?? '');
      const hash = m?.[1] ?? '';
      const answer = (status: number, data?: Buffer | string): void => {
        requests.push({ method: req.method ?? '', hash, status, bytes: req.method === 'PUT' ? body.length : Buffer.byteLength(data ?? '') });
        res.writeHead(status, { 'Content-Type': data instanceof Buffer ? 'application/octet-stream' : 'text/plain' });
        res.end(data);
      };
      if (!m) return answer(404, 'not found');
      const auth = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
      const canRead = auth === opts.token || (opts.readOnlyToken !== undefined && auth === opts.readOnlyToken);
      if (!canRead) return answer(401, 'missing or invalid authentication token');
      if (req.method === 'GET') {
        const entry = entries.get(hash);
        return entry ? answer(200, entry) : answer(404, 'not found');
      }
      if (req.method === 'PUT') {
        if (auth !== opts.token) return answer(403, 'read-only access');
        if (entries.has(hash)) return answer(409, 'cannot override an existing record');
        if (req.headers['content-length'] === undefined) return answer(411, 'Content-Length required');
        entries.set(hash, body);
        return answer(200, 'stored');
      }
      return answer(405, 'method not allowed');
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        url: `http://127.0.0.1:${port}`,
        entries,
        requests,
        close: () =>
          new Promise<void>((r) => {
            server.close(() => r());
            server.closeAllConnections();
          }),
      });
    });
  });
}
