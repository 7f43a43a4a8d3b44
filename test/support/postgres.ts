/**
 * Throwaway PostgreSQL for tests: a private cluster in a temp dir, and one fresh database per test file.
 *
 * The cluster trades durability for speed (fsync off, trust auth on 127.0.0.1 only); it is never for data
 * anyone wants to keep.
 */
import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { access, chown, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export interface PostgresCluster {
  /** `postgres://postgres@127.0.0.1:PORT/postgres` */
  readonly url: string;
  /** Stops the server at once (`pg_ctl stop -m immediate`) and removes its directory. Idempotent. */
  stop(): Promise<void>;
}

/** The part of a `pg` client these helpers and their tests use. */
export interface PgClient {
  connect(): Promise<unknown>;
  query<R = Record<string, unknown>>(text: string, values?: unknown[]): Promise<{ rows: R[]; rowCount: number | null }>;
  end(): Promise<void>;
  on(event: 'error', listener: (error: Error) => void): unknown;
}

interface PgModule {
  Client: new (config: { connectionString: string }) => PgClient;
}

// `pg` ships no type declarations and @types/pg is not a dependency, so load it through require with
// the small interface above instead of an untyped import.
const pg = createRequire(import.meta.url)('pg') as PgModule;

/** Opens a `pg` connection to `url`; the caller ends it. */
export async function connectPostgres(url: string): Promise<PgClient> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  return client;
}

/** Parses a postgres:// (or postgresql://) URL; missing parts take libpq's defaults. */
export function parsePostgresUrl(url: string): {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
} {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error('Not a PostgreSQL URL (expected postgres://user:password@host:port/database)');
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new Error(`Not a PostgreSQL URL: scheme "${parsed.protocol}" (expected postgres: or postgresql:)`);
  }
  const query = parsed.searchParams;
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1') || query.get('host') || 'localhost';
  const port = Number(parsed.port || query.get('port') || 5432);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`Invalid PostgreSQL port in URL: ${port}`);
  const user = decodeURIComponent(parsed.username) || query.get('user') || userInfo().username;
  const password = decodeURIComponent(parsed.password) || query.get('password') || '';
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, '')) || query.get('dbname') || user;
  return { host, port, user, password, database };
}

/**
 * Creates a fresh database named `<prefix><time>_<random>` on the server at `baseUrl` and returns its URL.
 * `drop()` terminates every connection to it and drops it; calling it twice is harmless.
 */
export async function createDatabase(
  baseUrl: string,
  prefix = 'lo_test_',
): Promise<{ url: string; name: string; drop(): Promise<void> }> {
  if (!/^[a-z_][a-z0-9_]*$/.test(prefix) || prefix.length > 40) {
    throw new Error(`Invalid database name prefix "${prefix}": use lower-case letters, digits and _ (max 40)`);
  }
  const name = `${prefix}${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  await withClient(baseUrl, (client) => client.query(`CREATE DATABASE "${name}"`));
  const url = new URL(baseUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    name,
    drop: () =>
      withClient(baseUrl, async (client) => {
        await client.query(
          'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
          [name],
        );
        const { rows } = await client.query<{ v: string }>("SELECT current_setting('server_version_num') AS v");
        const force = Number(rows[0]?.v) >= 130000 ? ' WITH (FORCE)' : '';
        await client.query(`DROP DATABASE IF EXISTS "${name}"${force}`);
      }),
  };
}

async function withClient<T>(url: string, use: (client: PgClient) => Promise<T>): Promise<T> {
  const client = await connectPostgres(url);
  try {
    return await use(client);
  } finally {
    await client.end();
  }
}

/**
 * Starts a throwaway cluster: `initdb` into a fresh temp dir, then `pg_ctl start` on a free port of
 * 127.0.0.1 with its socket in that dir. As root it runs the PostgreSQL programs as user `postgres`
 * through `runuser` (PostgreSQL refuses to run as root); as anyone else it runs them directly.
 * @throws Error naming what is missing when PostgreSQL's programs or the `postgres` user are not there.
 */
export async function startPostgresCluster(): Promise<PostgresCluster> {
  const bin = await findPostgresBinaries();
  const runAs = process.getuid?.() === 0 ? await postgresUser() : undefined;
  const dir = await mkdtemp(join(tmpdir(), 'lo-pg-'));
  const dataDir = join(dir, 'data');
  const logFile = join(dir, 'server.log');
  const run = (file: string, args: string[]) => runProgram(runAs, file, args, dir);
  try {
    if (runAs) await chown(dir, runAs.uid, runAs.gid);
    await run(bin.initdb, ['-D', dataDir, '-A', 'trust', '--no-sync', '-U', 'postgres', '-E', 'UTF8', '--locale=C']);
    const port = await startServer(run, bin.pgCtl, dataDir, dir, logFile);
    return trackCluster(runAs, bin.pgCtl, dir, dataDir, `postgres://postgres@127.0.0.1:${port}/postgres`);
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

type Run = (file: string, args: string[]) => Promise<void>;

/** Starts the server, trying another port if the one picked was taken in the meantime. */
async function startServer(run: Run, pgCtl: string, dataDir: string, dir: string, logFile: string) {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const options = [
      `-p ${port}`,
      `-k '${dir}'`,
      '-c listen_addresses=127.0.0.1',
      '-c fsync=off',
      '-c full_page_writes=off',
      '-c synchronous_commit=off',
      '-c max_connections=300',
    ].join(' ');
    try {
      await run(pgCtl, ['-D', dataDir, '-l', logFile, '-w', '-t', '60', '-o', options, 'start']);
      return port;
    } catch (error) {
      const log = await readFile(logFile, 'utf8').catch(() => '');
      if (attempt < 3 && /could not bind|address already in use/i.test(log)) continue;
      throw new Error(`PostgreSQL did not start: ${(error as Error).message}\nserver log:\n${log.slice(-2000)}`, { cause: error });
    }
  }
}

function trackCluster(
  runAs: PostgresUser | undefined,
  pgCtl: string,
  dir: string,
  dataDir: string,
  url: string,
): PostgresCluster {
  const stopArgs = ['-D', dataDir, '-m', 'immediate', '-w', 'stop'];
  // If the process exits without stop() (a crash, an interrupted run), still leave no server behind.
  const onExit = () => {
    const [file, args] = command(runAs, pgCtl, stopArgs);
    spawnSync(file, args, { cwd: tmpdir(), stdio: 'ignore' });
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', onExit);
  let stopped: Promise<void> | undefined;
  return {
    url,
    stop() {
      stopped ??= (async () => {
        process.removeListener('exit', onExit);
        try {
          await runProgram(runAs, pgCtl, stopArgs, tmpdir());
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      })();
      return stopped;
    },
  };
}

interface PostgresUser {
  name: string;
  uid: number;
  gid: number;
  /** Absolute path of util-linux's `runuser`, which root uses to run programs as this user. */
  runuser: string;
}

async function postgresUser(): Promise<PostgresUser> {
  const runuser = await findExecutable('runuser', [...pathDirs(), '/usr/sbin', '/sbin']);
  if (!runuser) {
    throw new Error('Running as root, but runuser (util-linux) is not found to run PostgreSQL as user "postgres"');
  }
  try {
    const [uid, gid] = await Promise.all([
      execFileAsync('id', ['-u', 'postgres']),
      execFileAsync('id', ['-g', 'postgres']),
    ]);
    return { name: 'postgres', uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()), runuser };
  } catch {
    throw new Error(
      'Running as root, but there is no user "postgres" to run PostgreSQL as (PostgreSQL refuses to run as ' +
        'root). Install the Debian package "postgresql", which creates it, or run the tests as a normal user.',
    );
  }
}

function command(runAs: PostgresUser | undefined, file: string, args: string[]): [string, string[]] {
  return runAs ? [runAs.runuser, ['-u', runAs.name, '--', file, ...args]] : [file, args];
}

/** Runs a program (as `runAs` if given) in `cwd`, which that user must be able to enter. */
async function runProgram(runAs: PostgresUser | undefined, file: string, args: string[], cwd: string) {
  const [cmd, cmdArgs] = command(runAs, file, args);
  try {
    await execFileAsync(cmd, cmdArgs, { cwd, timeout: 120_000 });
  } catch (error) {
    const { stderr, stdout, code } = error as { stderr?: string; stdout?: string; code?: string | number };
    if (code === 'ENOENT') throw new Error(`Cannot run ${cmd}: not found`, { cause: error });
    const output = `${stderr ?? ''}${stdout ?? ''}`.trim();
    throw new Error(`${[cmd, ...cmdArgs].join(' ')} failed (${code ?? 'error'}): ${output}`, { cause: error });
  }
}

/** Finds `initdb` and `pg_ctl` on PATH, else in the newest /usr/lib/postgresql/<version>/bin (Debian). */
async function findPostgresBinaries(): Promise<{ initdb: string; pgCtl: string }> {
  const dirs = [...pathDirs(), ...(await debianPostgresBinDirs())];
  const initdb = await findExecutable('initdb', dirs);
  const pgCtl = await findExecutable('pg_ctl', dirs);
  if (!initdb || !pgCtl) {
    const missing = [!initdb && 'initdb', !pgCtl && 'pg_ctl'].filter(Boolean).join(' and ');
    throw new Error(
      `PostgreSQL server programs not found: ${missing} is not on PATH nor in /usr/lib/postgresql/<version>/bin. ` +
        'Install them (Debian: apt-get install postgresql), or set TEST_DATABASE_URL to an existing server, ' +
        'or leave postgres out of TEST_ENGINES.',
    );
  }
  return { initdb, pgCtl };
}

function pathDirs(): string[] {
  return (process.env.PATH ?? '').split(delimiter).filter(Boolean);
}

async function debianPostgresBinDirs(): Promise<string[]> {
  const root = '/usr/lib/postgresql';
  const versions = await readdir(root).catch(() => [] as string[]);
  return versions
    .filter((v) => /^\d+(\.\d+)?$/.test(v))
    .sort((a, b) => Number(b) - Number(a))
    .map((v) => join(root, v, 'bin'));
}

async function findExecutable(name: string, dirs: string[]): Promise<string | undefined> {
  for (const dir of dirs) {
    const file = join(dir, name);
    try {
      await access(file, fsConstants.X_OK);
      return file;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

/** A port that was free on 127.0.0.1 a moment ago (the caller retries if it is taken since). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => (port ? resolve(port) : reject(new Error('Could not pick a free port'))));
    });
  });
}
