import type { Config } from '../config.js';
import type { Orm } from '../db.js';
import type { Logger } from '../logger.js';
import type { EntityManager } from '@mikro-orm/core';
import type { Mailer } from '../mail/mailer.js';
import type { AccountEvents } from './account.events.js';
import { AccountService } from './account.service.js';
import { AuthService } from './auth.service.js';
import { ImageService } from './image.service.js';
import { InstructionPageService } from './instruction-page.service.js';
import type { KubeClient, KubeConnection } from '../k8s/client.js';
import type { InstanceEvents } from './lab-instance.events.js';
import { LabInstanceService, type CrashStep, type InstanceTouch } from './lab-instance.service.js';
import type { Quotas } from './lab-instance.quota.js';
import type { Metrics } from '../metrics.js';
import { LabService } from './lab.service.js';
import { VncGrantService } from './lab-instance.vnc-access.js';
import type { RateLimiter } from './rate-limiter.js';
import type { SessionTokens } from './session-tokens.js';
import { UserService } from './user.service.js';

/** Long-lived objects, built once in createApp. */
export interface AppDeps {
  config: Config;
  orm: Orm;
  logger: Logger;
  sessionTokens: SessionTokens;
  mailer: Mailer;
  rateLimiter: RateLimiter;
  kube: KubeClient;
  kubeConnection: KubeConnection;
  events: InstanceEvents;
  /** Account changes on this replica (rights, ended sessions), for open WebSocket connections. */
  accountEvents: AccountEvents;
  /** The live-status reconciler, built before the services. */
  reconciler: InstanceTouch;
  /** The quotas startLab checks, and the usage `me` shows. */
  quotas?: Quotas;
  /** Prometheus metrics. */
  metrics?: Metrics;
  /** Test-only (TEST_CRASH_AT): kills the process at a step of startLab. */
  crashPoint?: (step: CrashStep) => void;
}

/** Services bound to one request's EntityManager. */
export interface Services {
  auth: AuthService;
  accounts: AccountService;
  users: UserService;
  images: ImageService;
  labs: LabService;
  pages: InstructionPageService;
  instances: LabInstanceService;
  /** Which login session issued each VNC token (the console proxy ends consoles with it). */
  vncGrants: VncGrantService;
}

/** The services of one request or operation, bound to its EntityManager. */
export function createServices(deps: AppDeps, em: EntityManager): Services {
  const max = deps.config.graphql.maxPageSize;
  const auth = new AuthService(em, deps.config, deps.sessionTokens, deps.accountEvents);
  return {
    auth,
    accounts: new AccountService(em, deps.config, auth, deps.mailer, deps.rateLimiter, deps.accountEvents),
    users: new UserService(em, max, deps.accountEvents),
    images: new ImageService(em, max),
    labs: new LabService(em, max),
    pages: new InstructionPageService(em),
    instances: new LabInstanceService(em, deps),
    vncGrants: new VncGrantService(em),
  };
}
