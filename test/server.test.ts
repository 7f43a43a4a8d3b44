import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { serverAudits } from 'graphql-http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAppSchema } from '../src/graphql/schema.js';
import { printAppSchema } from '../src/graphql/print-schema.js';
import { startLoggedServer } from './support/accounts.js';
import { LabsDocument } from './generated/graphql.js';
import { GqlClient } from './support/graphql-client.js';
import { ENGINES, startTestServer, testDatabaseEnv, type TestServer } from './support/server.js';
import { eventually } from './support/wait.js';

describe.each(ENGINES)('the server on %s', (engine) => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(engine);
  });
  afterAll(() => server?.stop());
  const base = () => server.url.replace('/graphql', '');

  it('answers /healthz, and /readyz once the database and the watches are usable', async () => {
    expect(await (await fetch(`${base()}/healthz`)).json()).toEqual({ status: 'ok' });
    // The watches list in the background after start-up; until then /readyz says which part is missing.
    await eventually(async () => {
      const ready = await fetch(`${base()}/readyz`);
      const body = await ready.json();
      if (ready.status === 503) expect(body).toEqual({ status: 'not ready', database: true, kubernetes: false });
      expect(ready.status).toBe(200);
      expect(body).toEqual({ status: 'ready', database: true, kubernetes: true });
    }, 15_000);
  });

  it('shows GraphiQL to a browser from the server itself, with no external requests', async () => {
    const res = await fetch(server.url, { headers: { accept: 'text/html,application/xhtml+xml' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/html');
    const html = await res.text();
    expect(html).toContain('graphiql');
    expect(html).not.toMatch(/<script[^>]+src=["']https?:/i);
    expect(html).not.toMatch(/<link[^>]+href=["']https?:/i);
  });

  it('serves queries over GET too', async () => {
    const res = await fetch(`${server.url}?query=${encodeURIComponent('{ labs { totalCount } }')}`, { headers: { accept: 'application/json' } });
    expect(await res.json()).toEqual({ data: { labs: { totalCount: 0 } } });
  });

  it('refuses a query that is too deep or too costly before running it', async () => {
    const deep = `{ labs { edges { node { vms { lab { vms { lab { vms { lab { vms { name } } } } } } } } } } }`;
    const tooDeep = await server.client().fails(deep, undefined, 'BAD_USER_INPUT');
    expect(tooDeep.extensions?.reason).toBe('QUERY_TOO_DEEP');
    const costly = `{ labs(first: 100) { edges { node { vms { lab { vms { lab { instructionPages { title } } } } } } } } }`;
    const tooCostly = await server.client().fails(costly, undefined, 'BAD_USER_INPUT');
    expect(tooCostly.extensions?.reason).toBe('QUERY_TOO_COSTLY');
  });

  it('answers malformed and invalid queries with BAD_USER_INPUT, never a 500', async () => {
    const parse = await server.client().request('{ labs { ', undefined);
    expect(parse.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
    const invalid = await server.client().request('{ labs { nope } }', undefined);
    expect(invalid.status).toBe(400);
    expect(invalid.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
    const variables = await server.client().request(LabsDocument, { first: 'ten' as never });
    expect(variables.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
  });

  it('passes every MUST, SHOULD and MAY audit of the GraphQL-over-HTTP spec (graphql-http)', async () => {
    const results = await Promise.all(serverAudits({ url: server.url }).map((audit) => audit.fn()));
    const failed = results.filter((r) => r.status !== 'ok');
    expect(failed.map((r) => `${r.name}: ${'reason' in r ? r.reason : ''}`)).toEqual([]);
    const count = (level: string) => {
      const all = results.filter((r) => r.name.startsWith(level));
      return `${all.filter((r) => r.status === 'ok').length}/${all.length}`;
    };
    console.log(`graphql-http audits on ${engine}: MUST ${count('MUST')}, SHOULD ${count('SHOULD')}, MAY ${count('MAY')}`);
  });
});

describe('errors nobody expected', () => {
  it('are masked for the caller and logged in full with the request id', async () => {
    const server = await startLoggedServer('sqlite', {});
    try {
      // A table goes away under the running server (MikroORM 7 reopens a closed connection by itself).
      await server.app.deps.orm.em.getConnection().execute('alter table labs rename to labs_gone', [], 'run');
      const result = await server.client().request(LabsDocument, {});
      const error = result.errors![0];
      expect(error.message).toBe('Internal server error');
      expect(error.extensions?.code).toBe('INTERNAL_SERVER_ERROR');
      expect(JSON.stringify(error)).not.toMatch(/select|sqlite|no such table|kysely/i);
      const requestId = error.extensions?.requestId;
      expect(result.headers.get('x-request-id')).toBe(requestId);
      const logged = server.logs.find((l) => l.msg === 'unexpected error');
      expect(logged?.fields.requestId).toBe(requestId);
      const detail = String((logged?.fields.error as Error).message);
      expect(detail.length).toBeGreaterThan(10);
      expect(JSON.stringify(result)).not.toContain(detail);
    } finally {
      await server.stop();
    }
  });
});

describe('schema.graphql', () => {
  it('describes every public type and field', async () => {
    const schema = await buildAppSchema();
    const missing: string[] = [];
    for (const type of Object.values(schema.getTypeMap())) {
      if (type.name.startsWith('__') || ['String', 'Int', 'Boolean', 'ID', 'Float', 'Query', 'Mutation', 'Subscription'].includes(type.name)) {
        if (!['Query', 'Mutation', 'Subscription'].includes(type.name)) continue;
      } else if (!type.description) missing.push(type.name);
      if ('getFields' in type) for (const f of Object.values(type.getFields())) if (!f.description) missing.push(`${type.name}.${f.name}`);
    }
    expect(missing).toEqual([]);
  });

  it('is what `npm run schema` writes from the code (run it after changing resolvers)', async () => {
    const emitted = printAppSchema(await buildAppSchema());
    expect(readFileSync('schema.graphql', 'utf8')).toBe(emitted);
  });
});

describe('the process', () => {
  it('starts with no configuration at all, then drains and exits 0 on SIGTERM', async () => {
    const db = await testDatabaseEnv('sqlite');
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      env: { PATH: process.env.PATH, HOME: db.env.SQLITE_PATH.replace(/\/db.sqlite3$/, ''), PORT: '0', HOST: '127.0.0.1', SQLITE_PATH: db.env.SQLITE_PATH, },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const listening = new Promise<string>((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        const m = /"msg":"listening","url":"([^"]+)"/.exec(output);
        if (m) resolve(m[1]);
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.once('exit', (code) => reject(new Error(`exited early with ${code}: ${output}`)));
    });
    const url = await listening;
    expect(output).toContain('SIMULATED KUBERNETES CLUSTER');
    expect(output).toContain('SECRET_KEY is not set');
    const { data } = await new GqlClient(url).request('{ labs { totalCount } }');
    expect(data).toEqual({ labs: { totalCount: 0 } });
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(output).toContain('"msg":"shutting down"');
    await db.drop();
  });

  it('refuses to start in production mode without SECRET_KEY, naming the variable', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      env: { PATH: process.env.PATH, NODE_ENV: 'production', PORT: 'not-a-port', ACCOUNT_EMAIL_VERIFICATION: 'none' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (c) => (output += c));
    child.stderr.on('data', (c) => (output += c));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(code).toBe(78);
    expect(output).toContain('SECRET_KEY');
    expect(output).toContain('PORT');
  });
});

describe('ALLOWED_HOSTS', () => {
  it("refuses requests for other hosts, as the original's setting did, but never the probes", async () => {
    const { request } = await import('node:http');
    const server = await startTestServer('sqlite', { ALLOWED_HOSTS: 'labs.example.org;localhost' });
    const get = (path: string, host: string) =>
      new Promise<number>((resolve, reject) => {
        const url = new URL(server.url);
        request({ host: url.hostname, port: url.port, path, headers: { host, accept: 'application/json' } }, (res) => {
          res.resume();
          resolve(res.statusCode!);
        })
          .on('error', reject)
          .end();
      });
    try {
      const query = `/graphql?query=${encodeURIComponent('{ labs { totalCount } }')}`;
      expect(await get(query, 'labs.example.org')).toBe(200);
      expect(await get(query, 'localhost:4000')).toBe(200);
      expect(await get(query, 'evil.example.com')).toBe(400);
      expect(await get('/healthz', 'evil.example.com')).toBe(200);
    } finally {
      await server.stop();
    }
  });
});
