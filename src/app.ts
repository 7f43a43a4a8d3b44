import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginCacheControlDisabled } from '@apollo/server/plugin/disabled';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { expressMiddleware } from '@as-integrations/express5';
import express, { type Request } from 'express';
import type { GraphQLSchema } from 'graphql';
import type { Config } from './config.js';
import { openDatabase } from './db.js';
import { buildContext, type Context } from './graphql/context.js';
import { createDocumentStore } from './graphql/documents.js';
import { formatError } from './graphql/errors.js';
import { graphiqlPage, wantsGraphiql } from './graphql/graphiql.js';
import { errorReportingPlugin, queryLimitsPlugin } from './graphql/plugins.js';
import { catalogueCachePlugin } from './graphql/response-cache.js';
import { buildAppSchema } from './graphql/schema.js';
import { createLogger, type Logger } from './logger.js';
import { createMailer } from './mail/mailer.js';
import { ensureSuperuser } from './services/auth.service.js';
import type { AppDeps } from './services/index.js';
import { RateLimiter } from './services/rate-limiter.js';
import { SessionTokens } from './services/session-tokens.js';
import { connectKubernetes, KubeClient } from './k8s/client.js';
import { InstanceEvents } from './services/lab-instance.events.js';
import { AccountEvents } from './services/account.events.js';
import { Reconciler } from './reconciler/lab-instance.reconciler.js';
import { Duties } from './reconciler/lab-instance.duties.js';
import { Quotas } from './services/lab-instance.quota.js';
import { instancesByStatus } from './services/lab-instance.rows.js';
import { Metrics } from './metrics.js';
import { metricsPlugin } from './graphql/metrics-plugin.js';
import { LeaderElector } from './k8s/leader.js';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { CrashStep } from './config.js';
import type { SimulatedCluster } from './simulated/index.js';
import { attachWebSockets } from './ws/server.js';
import { consoleRouter } from './ws/vnc-console.js';

export interface App {
  readonly httpServer: Server;
  readonly deps: AppDeps;
  readonly schema: GraphQLSchema;
  /** The in-process simulated cluster, when KUBERNETES_MODE chose it. */
  readonly simulated?: SimulatedCluster;
  /** Leader election for the periodic duties (a Kubernetes Lease). */
  readonly leader: LeaderElector;
  /** The periodic duties, run while this replica leads. */
  readonly duties: Duties;
  /** Listens on config.http (port 0 picks a free port); resolves with the URL of /graphql. */
  start(): Promise<string>;
  /** Stops watchers, closes WebSocket clients, drains HTTP, then closes the database. Idempotent. */
  stop(): Promise<void>;
}

export interface AppOptions {
  logger?: Logger;
  /** Receives every SQL statement (instrumentation for tests and benchmarks). */
  onQuery?: (sql: string) => void;
}

const REQUEST_ID = /^[A-Za-z0-9._-]{8,128}$/;

/** The composition root's only product: builds every long-lived object. No side effects on import. */
export async function createApp(config: Config, options: AppOptions = {}): Promise<App> {
  const logger = options.logger ?? createLogger('info');
  if (config.secretKeyGenerated) {
    logger.warn('SECRET_KEY is not set: generated a random one for this process (development mode). Tokens die with the process; replicas will not agree.');
  }
  const orm = await openDatabase(config.database, logger, options.onQuery);
  const metrics = new Metrics();
  try {
    await ensureSuperuser(orm.em.fork(), config, logger);
  } catch (err) {
    await orm.close(true);
    throw err;
  }
  // The simulated cluster is loaded only when chosen: production images never evaluate it.
  const kubeConnection = await connectKubernetes(config, logger, async (options) => (await import('./simulated/index.js')).startSimulatedCluster(options));
  const base = {
    config,
    orm,
    logger,
    sessionTokens: new SessionTokens(config.secretKey),
    mailer: createMailer(config, logger),
    rateLimiter: new RateLimiter(orm, config.auth.rateLimits, logger),
    kube: new KubeClient(kubeConnection.kubeConfig, config.kubernetes.requestTimeoutMs),
    kubeConnection,
    events: new InstanceEvents(),
    accountEvents: new AccountEvents(),
    crashPoint: config.testCrashAt ? crashAt(config.testCrashAt, logger) : undefined,
    quotas: new Quotas(config.quotas),
    metrics,
  };
  // The reconciler drives the services (it stops expired instances) and they touch it: built first.
  const reconciler = new Reconciler(orm, base, config, logger.child({ component: 'reconciler' }));
  const deps: AppDeps = { ...base, reconciler };
  const leader = new LeaderElector(
    base.kube,
    { ...config.leader, identity: config.leader.identity ?? `${hostname()}-${randomBytes(4).toString('hex')}` },
    logger.child({ component: 'leader' }),
  );
  const duties = new Duties(orm, deps, reconciler, leader, config, logger.child({ component: 'duties' }), (duty) => metrics.dutyRuns.inc({ duty }));
  const schema = await buildAppSchema();

  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', config.http.trustProxy);
  const httpServer = createServer(app);
  const apollo = new ApolloServer<Context>({
    schema,
    formatError,
    csrfPrevention: false, // credentials travel only in the Authorization header, never in cookies
    introspection: true,
    stopOnTerminationSignals: false, // main.ts owns signals; Apollo's own handler re-raises SIGTERM
    includeStacktraceInErrorResponses: false,
    // Bounded by bytes held, query text included; parsing stops at maxTokens, before any cache.
    documentStore: createDocumentStore(config.graphql.documentCacheBytes),
    parseOptions: { maxTokens: config.graphql.maxTokens },
    plugins: [
      ApolloServerPluginDrainHttpServer({ httpServer }),
      ApolloServerPluginCacheControlDisabled(), // no HTTP caching hints: it wraps every field resolver
      queryLimitsPlugin(() => schema, config.graphql),
      errorReportingPlugin(),
      catalogueCachePlugin(orm, config.graphql.catalogueCacheEntries, config.graphql.catalogueCacheBytes),
      metricsPlugin(metrics),
    ],
  });
  await apollo.start();

  if (config.http.allowedHosts.length) app.use(allowedHostsGuard(config));
  app.get('/healthz', (_req, res) => void res.json({ status: 'ok' }));
  app.get('/readyz', async (_req, res) => {
    const database = await orm.isConnected().catch(() => false);
    const kubernetes = reconciler.healthy;
    const ok = database && kubernetes;
    res.status(ok ? 200 : 503).json({ status: ok ? 'ready' : 'not ready', database, kubernetes });
  });
  // Prometheus text format (prom-client); deploy/ carries the scrape annotations.
  app.get('/metrics', async (_req, res) => {
    res.type(metrics.contentType).send(await metrics.text());
  });
  app.get('/graphql', (req, res, next) => {
    if (!wantsGraphiql(req.headers.accept, req.query.query)) return next();
    res.type('html').send(graphiqlPage());
  });
  // The VNC console page (its WebSocket proxy is attached with the other WebSockets below).
  app.use('/console', consoleRouter());
  app.use(
    '/graphql',
    express.json({ limit: '1mb' }),
    expressMiddleware(apollo, {
      context: async ({ req }) =>
        buildContext(deps, { authorization: req.headers.authorization, ip: req.ip, requestId: requestIdOf(req) }),
    }),
  );

  const webSockets = attachWebSockets(httpServer, schema, deps);
  metrics.setSources({
    instancesByStatus: () => instancesByStatus(orm),
    webSockets: () => ({ connections: webSockets.clientCount(), subscriptions: webSockets.subscriptionCount() }),
    leader: () => leader.isLeader,
  });
  let stopping: Promise<void> | undefined;
  return {
    httpServer,
    deps,
    schema,
    simulated: kubeConnection.simulated as SimulatedCluster | undefined,
    leader,
    duties,
    async start() {
      await new Promise<void>((resolve, reject) => {
        httpServer.once('error', reject);
        httpServer.listen(config.http.port, config.http.host, () => resolve());
      });
      reconciler.start();
      leader.start();
      duties.start();
      const { port } = httpServer.address() as AddressInfo;
      const host = config.http.host === '0.0.0.0' || config.http.host === '::' ? '127.0.0.1' : config.http.host;
      const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}/graphql`;
      logger.info('listening', { url, database: config.database.engine });
      return url;
    },
    stop() {
      stopping ??= (async () => {
        await duties.stop();
        await leader.stop();
        await reconciler.stop();
        await webSockets.close();
        await apollo.stop(); // drains HTTP through the plugin
        await deps.mailer.close(); // mails still in flight go out first
        await kubeConnection.simulated?.stop();
        await orm.close(true);
      })();
      return stopping;
    },
  };
}

/** TEST_CRASH_AT (test-only): the process kills itself at that step of startLab, as an OOM kill would. */
function crashAt(step: CrashStep, logger: Logger): (at: CrashStep) => void {
  logger.warn('TEST_CRASH_AT is set: this process will kill itself during startLab (test-only setting)', { step });
  return (at) => {
    if (at === step) process.kill(process.pid, 'SIGKILL');
  };
}

function requestIdOf(req: Request): string | undefined {
  const header = req.headers['x-request-id'];
  return typeof header === 'string' && REQUEST_ID.test(header) ? header : undefined;
}

/** The original's ALLOWED_HOSTS: refuse requests whose Host is not listed (probes on any host pass). */
function allowedHostsGuard(config: Config): express.RequestHandler {
  const allowed = new Set(config.http.allowedHosts.map((h) => h.toLowerCase()));
  return (req, res, next) => {
    if (req.path === '/healthz' || req.path === '/readyz' || req.path === '/metrics' || allowed.has('*')) return next();
    const forwarded = config.http.useXForwardedHost ? req.headers['x-forwarded-host'] : undefined;
    const host = String(forwarded ?? req.headers.host ?? '').split(',')[0].trim().replace(/:\d+$/, '').toLowerCase();
    if (allowed.has(host)) return next();
    res.status(400).json({ errors: [{ message: 'Host not allowed', extensions: { code: 'BAD_USER_INPUT' } }] });
  };
}
