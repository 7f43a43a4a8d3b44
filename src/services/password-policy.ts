import { createRequire } from 'node:module';
import { badInput } from '../errors.js';

const require = createRequire(import.meta.url);

/**
 * Mozilla's list of the 50,000 most common passwords of 8 characters or more (Firefox Accounts),
 * decoded once into a Set: one hash lookup per check. The package's own test() scans the whole
 * array (indexOf), and the policy asks twice per password. Only its data file is used: a sorted
 * list, front-coded one entry a line as the length of the prefix shared with the entry before (one
 * base-36 digit) followed by the rest. The package is unmaintained, so its version is pinned.
 */
function loadCommonPasswords(): ReadonlySet<string> {
  const encoded = require('fxa-common-password-list/src/encoded-passwords.js') as string;
  const passwords = new Set<string>();
  let previous = '';
  for (const line of encoded.split('\n')) {
    if (!line) continue;
    const shared = parseInt(line[0], 36);
    if (Number.isNaN(shared) || shared > previous.length) throw new Error(`fxa-common-password-list: unreadable entry ${JSON.stringify(line)}`);
    previous = previous.slice(0, shared) + line.slice(1);
    passwords.add(previous);
  }
  return passwords;
}

const commonPasswords = loadCommonPasswords();

/** Whether the list names this password, as typed or in lower case. */
export function isCommonPassword(password: string): boolean {
  return commonPasswords.has(password) || commonPasswords.has(password.toLowerCase());
}

export const PASSWORD_MIN_LENGTH = 8;
/** Far above any real password; keeps hashing input bounded. */
export const PASSWORD_MAX_LENGTH = 1024;
/** The original's UserAttributeSimilarityValidator threshold. */
const MAX_SIMILARITY = 0.7;

/** What a password must not resemble. */
export interface PasswordOwner {
  email: string;
  firstName?: string;
  lastName?: string;
  displayName?: string;
}

export const PASSWORD_MESSAGES = {
  tooShort: `This password is too short: it must contain at least ${PASSWORD_MIN_LENGTH} characters`,
  tooLong: `This password is too long: at most ${PASSWORD_MAX_LENGTH} characters`,
  numeric: 'This password is entirely numeric',
  common: 'This password is too common',
  similar: 'This password is too similar to your e-mail address or name',
} as const;

/**
 * The original's four rules (minimum length, not all digits, not common, not like the e-mail or
 * name), each with its own message.
 * @param field reported as extensions.field: the argument or input field name as the client sent
 *   it (`password` in RegisterInput, `newPassword` for changePassword and resetPassword).
 * @throws AppError BAD_USER_INPUT on the first rule broken.
 */
export function checkPassword(password: string, owner: PasswordOwner, field: string): void {
  const problem = passwordProblem(password, owner);
  if (problem) throw badInput(field, PASSWORD_MESSAGES[problem]);
}

export function passwordProblem(password: string, owner: PasswordOwner): keyof typeof PASSWORD_MESSAGES | null {
  if (password.length < PASSWORD_MIN_LENGTH) return 'tooShort';
  if (password.length > PASSWORD_MAX_LENGTH) return 'tooLong';
  if (/^\d+$/.test(password)) return 'numeric';
  if (isCommonPassword(password)) return 'common';
  if (tooSimilar(password, owner)) return 'similar';
  return null;
}

/**
 * Similar means: within edit-distance ratio 0.7 of the e-mail, its local part, a name, or any word
 * of them; or made up mostly (half or more) of one of those words.
 */
function tooSimilar(password: string, owner: PasswordOwner): boolean {
  const p = password.toLowerCase();
  const email = owner.email.toLowerCase();
  const values = [email, email.split('@')[0], owner.firstName, owner.lastName, owner.displayName];
  const candidates = new Set<string>();
  for (const value of values) {
    if (!value) continue;
    const v = value.toLowerCase();
    for (const part of [v, ...v.split(/[^\p{L}\p{N}]+/u)]) if (part.length >= 3) candidates.add(part);
  }
  for (const c of candidates) {
    if (similarity(p, c) >= MAX_SIMILARITY) return true;
    if (p.includes(c) && c.length * 2 >= p.length) return true;
  }
  return false;
}

/** 1 - Levenshtein distance / longer length: 1 for equal strings, 0 for nothing in common. */
function similarity(a: string, b: string): number {
  if (a === b) return 1;
  const longer = Math.max(a.length, b.length);
  if (Math.abs(a.length - b.length) / longer > 1 - MAX_SIMILARITY) return 0;
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return 1 - previous[b.length] / longer;
}
