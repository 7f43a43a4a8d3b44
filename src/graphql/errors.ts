import { GraphQLError, type GraphQLFormattedError } from 'graphql';
import { unwrapResolverError } from '@apollo/server/errors';
import { ArgumentValidationError } from 'type-graphql';
import {
  ForeignKeyConstraintViolationException,
  NotNullConstraintViolationException,
  UniqueConstraintViolationException,
} from '@mikro-orm/core';

/** The contract's closed set of error codes. */
export type ErrorCode =
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'BAD_USER_INPUT'
  | 'CONFLICT'
  | 'KUBERNETES_ERROR'
  | 'RATE_LIMITED'
  | 'INTERNAL_SERVER_ERROR';

const CODES = new Set<string>([
  'UNAUTHENTICATED',
  'FORBIDDEN',
  'NOT_FOUND',
  'BAD_USER_INPUT',
  'CONFLICT',
  'KUBERNETES_ERROR',
  'RATE_LIMITED',
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

export class AppError extends GraphQLError {
  constructor(message: string, code: ErrorCode, extensions: Record<string, unknown> = {}) {
    super(message, { extensions: { ...extensions, code } });
    this.name = 'AppError';
  }
  get code(): ErrorCode {
    return this.extensions.code as ErrorCode;
  }
}

export const badInput = (field: string, message: string) => new AppError(message, 'BAD_USER_INPUT', { field });
export const notFound = (type: string, id?: string | number) =>
  new AppError(id === undefined ? `${type} not found` : `${type} ${id} not found`, 'NOT_FOUND');
export const conflict = (message: string, field?: string) =>
  new AppError(message, 'CONFLICT', field ? { field } : {});
export const forbidden = (message = 'You are not allowed to do this') => new AppError(message, 'FORBIDDEN');
export const unauthenticated = (message = 'Authentication required: send a valid bearer token') =>
  new AppError(message, 'UNAUTHENTICATED');
export const rateLimited = (retryAfterSeconds: number) =>
  new AppError(`Too many attempts; retry in ${retryAfterSeconds} s`, 'RATE_LIMITED', { retryAfterSeconds });
export const kubernetesError = (message: string) => new AppError(message, 'KUBERNETES_ERROR');

/** Realm-independent: graphql may be loaded twice (ESM and CJS), so instanceof alone is not enough. */
function isGraphQLError(e: unknown): e is GraphQLError {
  return e instanceof GraphQLError || (e instanceof Error && e.name === 'GraphQLError' && 'extensions' in e);
}

export interface ErrorLogger {
  error(msg: string, fields?: Record<string, unknown>): void;
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
  if (REQUEST_CODES[code]) {
    return { ...base, extensions: { ...formatted.extensions, code: REQUEST_CODES[code], reason: code } };
  }
  if (CODES.has(code) && code !== 'INTERNAL_SERVER_ERROR' && (isGraphQLError(error) || !(error instanceof Error))) {
    const { stacktrace: _stack, ...extensions } = formatted.extensions ?? {};
    return { ...base, extensions };
  }
  return { ...base, message: 'Internal server error', extensions: { code: 'INTERNAL_SERVER_ERROR' } };
}

/** True when formatError would mask this error: these are logged in full. */
export function isUnexpected(raw: unknown): boolean {
  const error = unwrapResolverError(raw);
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
