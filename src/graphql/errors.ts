import { GraphQLError, type GraphQLFormattedError } from 'graphql';
import { unwrapResolverError } from '@apollo/server/errors';
import { ArgumentValidationError } from 'type-graphql';
import {
  ForeignKeyConstraintViolationException,
  NotNullConstraintViolationException,
  UniqueConstraintViolationException,
} from '@mikro-orm/core';

import { AppError, type ErrorCode } from '../errors.js';

const CODES = new Set<string>([
  'UNAUTHENTICATED',
  'FORBIDDEN',
  'NOT_FOUND',
  'BAD_USER_INPUT',
  'CONFLICT',
  'KUBERNETES_ERROR',
  'RATE_LIMITED',
  'QUOTA_EXCEEDED',
  'INTERNAL_SERVER_ERROR',
]);

/** Apollo's own request-level codes, folded into the contract's set. */
const REQUEST_CODES: Record<string, ErrorCode> = {
  GRAPHQL_PARSE_FAILED: 'BAD_USER_INPUT',
  GRAPHQL_VALIDATION_FAILED: 'BAD_USER_INPUT',
  BAD_REQUEST: 'BAD_USER_INPUT',
  OPERATION_RESOLUTION_FAILURE: 'BAD_USER_INPUT',
  PERSISTED_QUERY_NOT_FOUND: 'BAD_USER_INPUT',
  PERSISTED_QUERY_NOT_SUPPORTED: 'BAD_USER_INPUT',
};

/** Realm-independent: graphql may be loaded twice (ESM and CJS), so instanceof alone is not enough. */
function isGraphQLError(e: unknown): e is GraphQLError {
  return e instanceof GraphQLError || (e instanceof Error && e.name === 'GraphQLError' && 'extensions' in e);
}

export interface ErrorLogger {
  error(msg: string, fields?: Record<string, unknown>): void;
}

/** Who asked: the request's (or WebSocket operation's) logger, which carries its request id. */
export interface ErrorScope {
  logger: ErrorLogger;
  requestId: string;
}

/** Logs an error that formatError will mask, with the request id the client is shown. */
export function reportError(scope: ErrorScope, raw: GraphQLError, operationName?: string | null): void {
  if (!isUnexpected(raw)) return;
  scope.logger.error('unexpected error', { operationName: operationName ?? undefined, path: raw.path?.join('.'), error: raw.originalError ?? raw });
}

/** A masked error carries the request id, so that a user's report can be matched to the log line. */
export function withRequestId(formatted: GraphQLFormattedError, requestId: string): GraphQLFormattedError {
  return formatted.extensions?.code === 'INTERNAL_SERVER_ERROR' ? { ...formatted, extensions: { ...formatted.extensions, requestId } } : formatted;
}

/**
 * The one way an error leaves the server, over HTTP (through Apollo's formatError and the errors
 * plugin, which call the same two functions) and over both WebSocket protocols: reported, then masked.
 */
export function reportAndMask(scope: ErrorScope, raw: GraphQLError, operationName?: string | null): GraphQLFormattedError {
  reportError(scope, raw, operationName);
  return withRequestId(formatError(raw.toJSON(), raw), scope.requestId);
}

/**
 * The one boundary where errors become responses. Known errors keep their code; ORM constraint
 * violations become CONFLICT; anything else is masked (the caller sees only a request id; the log
 * has the details, written by the errors plugin).
 */
export function formatError(formatted: GraphQLFormattedError, raw: unknown): GraphQLFormattedError {
  const error = unwrapResolverError(raw);
  const base = { message: formatted.message, locations: formatted.locations, path: formatted.path };
  if (error instanceof ArgumentValidationError) {
    const first = error.extensions.validationErrors?.[0];
    const field = first ? fieldPath(first) : undefined;
    const constraint = first?.constraints ? Object.values(first.constraints)[0] : undefined;
    return { ...base, message: constraint ?? 'Invalid input', extensions: { code: 'BAD_USER_INPUT', field } };
  }
  if (error instanceof UniqueConstraintViolationException) {
    return { ...base, message: 'An object with this value already exists', extensions: { code: 'CONFLICT' } };
  }
  if (error instanceof ForeignKeyConstraintViolationException) {
    return { ...base, message: 'The object is still in use', extensions: { code: 'CONFLICT' } };
  }
  if (error instanceof NotNullConstraintViolationException) {
    return { ...base, message: 'A required value is missing', extensions: { code: 'BAD_USER_INPUT' } };
  }
  const code = String(formatted.extensions?.code ?? '');
  if ((code === 'INTERNAL_SERVER_ERROR' || !CODES.has(code)) && !REQUEST_CODES[code] && isClientRefusal(error)) {
    return { ...base, extensions: { code: 'BAD_USER_INPUT', reason: 'BAD_REQUEST' } };
  }
  if (REQUEST_CODES[code]) {
    return { ...base, extensions: { ...formatted.extensions, code: REQUEST_CODES[code], reason: code } };
  }
  if (CODES.has(code) && code !== 'INTERNAL_SERVER_ERROR' && (isGraphQLError(error) || !(error instanceof Error))) {
    const { stacktrace: _stack, http: _http, ...extensions } = formatted.extensions ?? {};
    return { ...base, extensions };
  }
  return { ...base, message: 'Internal server error', extensions: { code: 'INTERNAL_SERVER_ERROR' } };
}

/**
 * Apollo's own refusals of a malformed request that carry no code, only an HTTP status of 4xx
 * (a persisted query whose hash does not match its text): client errors, not server faults.
 */
function isClientRefusal(error: unknown): boolean {
  if (!isGraphQLError(error) || error.originalError) return false;
  // Apollo reads and removes `extensions.http` before formatError sees the error: known by its text.
  const status = (error.extensions?.http as { status?: number } | undefined)?.status;
  return (typeof status === 'number' && status >= 400 && status < 500) || APOLLO_CLIENT_REFUSALS.has(error.message);
}

const APOLLO_CLIENT_REFUSALS = new Set(['provided sha does not match query']);

/** True when formatError would mask this error: these are logged in full. */
export function isUnexpected(raw: unknown): boolean {
  const error = unwrapResolverError(raw);
  if (isClientRefusal(error)) return false;
  if (error instanceof AppError || error instanceof ArgumentValidationError) return false;
  if (
    error instanceof UniqueConstraintViolationException ||
    error instanceof ForeignKeyConstraintViolationException ||
    error instanceof NotNullConstraintViolationException
  ) {
    return false;
  }
  if (isGraphQLError(error)) {
    const code = String(error.extensions?.code ?? '');
    return !(CODES.has(code) || REQUEST_CODES[code]) || (code === 'INTERNAL_SERVER_ERROR' && !!error.originalError);
  }
  return true;
}

interface ValidationErrorLike {
  property: string;
  children?: ValidationErrorLike[];
  constraints?: Record<string, string>;
}

function fieldPath(err: ValidationErrorLike): string {
  const child = err.children?.[0];
  if (!child) return err.property;
  return /^\d+$/.test(child.property) && child.children?.[0]
    ? `${err.property}.${child.property}.${fieldPath(child.children[0])}`
    : `${err.property}.${fieldPath(child)}`;
}
