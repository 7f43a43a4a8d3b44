import { badInput } from '../errors.js';

/** GraphQL IDs are decimal strings of positive integers here; anything else names the field. */
export function parseId(value: string | number, field = 'id'): number {
  const s = String(value).trim();
  const n = Number(s);
  if (!/^\d{1,15}$/.test(s) || !Number.isSafeInteger(n) || n < 1) throw badInput(field, `${field} is not a valid ID`);
  return n;
}
