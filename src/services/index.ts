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
import { LabInstanceService, type InstanceTouch } from './lab-instance.service.js';
import { LabService } from './lab.service.js';
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
  };
}
