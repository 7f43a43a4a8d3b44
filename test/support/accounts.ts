/** Helpers for the account tests: mail settings, generous rate limits, a server whose log can be read. */
import { randomUUID } from 'node:crypto';
import type { Logger } from '../../src/logger.js';
import { startTestServer, type Engine, type TestServer } from './server.js';
import type { TestSmtpServer } from './smtp.js';

export const VERIFY_URL = 'https://app.example.test/verify-email';
export const RESET_URL = 'https://app.example.test/reset-password';
export const FROM = 'Lab Orchestrator <noreply@example.test>';

/** High enough that no flow test meets a limit; the rate limit tests set their own. */
export const GENEROUS_LIMITS: Record<string, string> = {
  RATE_LIMIT_LOGIN: '10000/60',
  RATE_LIMIT_REGISTER: '10000/60',
  RATE_LIMIT_PASSWORD_RESET: '10000/60',
  RATE_LIMIT_VERIFY_EMAIL: '10000/60',
  RATE_LIMIT_RESEND_VERIFICATION: '10000/60',
};

/** Points the app at the test SMTP listener, with front-end link templates the tests recognise. */
export function mailEnv(smtp: TestSmtpServer | null, extra: Record<string, string> = {}): Record<string, string> {
  return {
    ...(smtp ? smtp.env() : {}),
    DEFAULT_FROM_EMAIL: FROM,
    FRONTEND_VERIFY_EMAIL_URL: `${VERIFY_URL}?token={token}`,
    FRONTEND_RESET_PASSWORD_URL: `${RESET_URL}?token={token}`,
    ...GENEROUS_LIMITS,
    ...extra,
  };
}

export const uniqueEmail = (prefix = 'person') => `${prefix}-${randomUUID().slice(0, 8)}@example.org`;

/** A RegisterInput that passes every rule. */
export function registration(overrides: Partial<{ email: string; password: string; firstName: string; lastName: string; displayName: string }> = {}) {
  return { email: uniqueEmail(), password: 'violet-harbour-lantern-42', firstName: 'Ada', lastName: 'Lovelace', displayName: 'Countess', ...overrides };
}

export interface LogEntry {
  level: string;
  msg: string;
  fields: Record<string, unknown>;
}

/** A Logger that keeps every entry, so a test can see what was logged. */
export function recordingLogger(entries: LogEntry[] = [], base: Record<string, unknown> = {}): Logger & { entries: LogEntry[] } {
  const write = (level: string) => (msg: string, fields?: Record<string, unknown>) => void entries.push({ level, msg, fields: { ...base, ...fields } });
  return {
    entries,
    debug: write('debug'),
    info: write('info'),
    warn: write('warn'),
    error: write('error'),
    child: (fields) => recordingLogger(entries, { ...base, ...fields }),
  };
}

/** startTestServer with a recording logger (and its own database). */
export async function startLoggedServer(engine: Engine, env: Record<string, string>): Promise<TestServer & { logs: LogEntry[] }> {
  const logger = recordingLogger();
  const server = await startTestServer(engine, env, undefined, { logger });
  return Object.assign(server, { logs: logger.entries });
}
