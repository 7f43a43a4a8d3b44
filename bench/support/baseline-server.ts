import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createPgPool, type PgPool } from './pg.js';

/**
 * The catalogue benchmark's baseline: a bare node:http handler that answers
 * `labs(first: 50) { edges { node { name vms { name image { name url } } } } }` with the same JSON as
 * the GraphQL server, from one hand-written SQL statement (prepared once per connection). It parses
 * no GraphQL: it is the ceiling that the real server is compared with.
 */
const PAGE_SQL = `
  SELECT l.id AS lab_id, l.name AS lab_name, v.name AS vm_name, i.name AS image_name, i.url AS image_url
  FROM (SELECT id, name FROM labs ORDER BY id LIMIT $1) l
  LEFT JOIN lab_vms v ON v.lab_id = l.id
  LEFT JOIN images i ON i.id = v.image_id
  ORDER BY l.id, v.id`;

interface Row {
  lab_id: number;
  lab_name: string;
  vm_name: string | null;
  image_name: string | null;
  image_url: string | null;
}

interface VmNode {
  name: string;
  image: { name: string; url: string };
}

export interface Baseline {
  url: string;
  close(): Promise<void>;
}

async function labsPage(pool: PgPool, first: number): Promise<string> {
  const { rows } = await pool.query<Row>({ name: 'labs_page', text: PAGE_SQL, values: [first] });
  const edges: { node: { name: string; vms: VmNode[] } }[] = [];
  let lastId: number | undefined;
  for (const row of rows) {
    if (row.lab_id !== lastId) {
      edges.push({ node: { name: row.lab_name, vms: [] } });
      lastId = row.lab_id;
    }
    if (row.vm_name !== null) {
      edges[edges.length - 1].node.vms.push({ name: row.vm_name, image: { name: row.image_name ?? '', url: row.image_url ?? '' } });
    }
  }
  return JSON.stringify({ data: { labs: { edges } } });
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function send(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** Listens on 127.0.0.1, port 0; the URL ends in /graphql like the real server's. */
export async function startBaseline(postgresUrl: string, poolMax: number, pageSize: number): Promise<Baseline> {
  const pool = createPgPool(postgresUrl, poolMax);
  const server = createServer((req, res) => {
    if (req.method !== 'POST' || req.url !== '/graphql') return send(res, 404, '{"error":"not found"}');
    readBody(req)
      .then((body) => {
        JSON.parse(body); // a request the real server would accept is JSON; do at least that much work
        return labsPage(pool, pageSize);
      })
      .then(
        (json) => send(res, 200, json),
        (err: Error) => send(res, 500, JSON.stringify({ error: err.message })),
      );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/graphql`,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await pool.end();
    },
  };
}
