import { GraphQLError } from 'graphql';

/** The contract's closed set of error codes. */
export type ErrorCode =
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'BAD_USER_INPUT'
  | 'CONFLICT'
  | 'KUBERNETES_ERROR'
  | 'RATE_LIMITED'
  | 'QUOTA_EXCEEDED'
  | 'INTERNAL_SERVER_ERROR';

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
/** Over a quota (startLab): which one, its limit, and how much is used already. */
export const quotaExceeded = (quota: string, limit: number, used: number, message: string) =>
  new AppError(message, 'QUOTA_EXCEEDED', { quota, limit, used });
export const kubernetesError = (message: string) => new AppError(message, 'KUBERNETES_ERROR');

