import type { IncomingMessage, ServerResponse } from 'node:http';
import type { KubeObject } from './resources.js';
import { ApiError, badRequest, failure, type Status } from './status.js';

const MAX_BODY_BYTES = 8 * 1024 * 1024;

export function sendJson(res: ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

export function sendStatus(res: ServerResponse, status: Status): void {
  sendJson(res, status.code, status);
}

export function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(failureError(413, 'request entity too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function failureError(code: number, message: string): ApiError {
  return new ApiError(failure(code, message, 'RequestEntityTooLarge'));
}

/** Parses a JSON request body; bad JSON is a 400 BadRequest, never a crash. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw badRequest(`the body of the request was in an unknown format: ${(err as Error).message}`);
  }
}

/** Parses a request body that must be one JSON object. */
export function parseObject(text: string): KubeObject {
  const value = parseJson(text);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw badRequest('the body of the request must be a JSON object');
  }
  const obj = value as KubeObject;
  if (obj.metadata === undefined) obj.metadata = {};
  if (obj.metadata === null || typeof obj.metadata !== 'object' || Array.isArray(obj.metadata)) {
    throw badRequest('metadata must be an object');
  }
  return obj;
}

/** Parses an optional JSON body (DELETE options); an empty body is fine. */
export function parseOptional(text: string): Record<string, unknown> | undefined {
  if (!text.trim()) return undefined;
  return parseObject(text) as unknown as Record<string, unknown>;
}
