import type { KubeObject } from './resources.js';
import { badRequest } from './status.js';

type Operator = 'eq' | 'neq' | 'in' | 'notin' | 'exists' | 'notexists' | 'gt' | 'lt';

interface Requirement {
  key: string;
  op: Operator;
  values: string[];
}

/** A parsed label or field selector; `matches` is called once per object per watcher, so it stays allocation-free. */
export interface Selector {
  readonly empty: boolean;
  matches(obj: KubeObject): boolean;
}

const KEY = '[A-Za-z0-9][-A-Za-z0-9_./]*';
const VALUE = '[-A-Za-z0-9_.]*';
const SET_RE = new RegExp(`^(${KEY})\\s+(in|notin)\\s*\\(([^)]*)\\)$`);
const CMP_RE = new RegExp(`^(${KEY})\\s*(==|=|!=|>|<)\\s*(${VALUE})$`);
const EXISTS_RE = new RegExp(`^(!?)\\s*(${KEY})$`);

/** Splits on commas that are not inside a parenthesised set: `a in (x,y),b` is two requirements. */
function splitTopLevel(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === ',' && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts.map((p) => p.trim()).filter((p) => p.length > 0);
}

const CMP_OPS: Record<string, Operator> = { '=': 'eq', '==': 'eq', '!=': 'neq', '>': 'gt', '<': 'lt' };

function parseRequirement(part: string, kind: string): Requirement {
  let m = SET_RE.exec(part);
  if (m) {
    const values = m[3].split(',').map((v) => v.trim()).filter((v) => v.length > 0);
    return { key: m[1], op: m[2] as Operator, values };
  }
  m = CMP_RE.exec(part);
  if (m) return { key: m[1], op: CMP_OPS[m[2]], values: [m[3]] };
  m = EXISTS_RE.exec(part);
  if (m) return { key: m[2], op: m[1] ? 'notexists' : 'exists', values: [] };
  throw badRequest(`unable to parse requirement: invalid ${kind} selector "${part}"`);
}

function test(req: Requirement, value: string | undefined): boolean {
  switch (req.op) {
    case 'eq': return value === req.values[0];
    case 'neq': return value !== req.values[0];
    case 'in': return value !== undefined && req.values.includes(value);
    case 'notin': return value === undefined || !req.values.includes(value);
    case 'exists': return value !== undefined;
    case 'notexists': return value === undefined;
    case 'gt': return value !== undefined && Number(value) > Number(req.values[0]);
    case 'lt': return value !== undefined && Number(value) < Number(req.values[0]);
  }
}

const MATCH_ALL: Selector = { empty: true, matches: () => true };

export function parseLabelSelector(text: string | null | undefined): Selector {
  if (!text || !text.trim()) return MATCH_ALL;
  const reqs = splitTopLevel(text).map((p) => parseRequirement(p, 'label'));
  return {
    empty: false,
    matches: (obj) => {
      const labels = obj.metadata.labels ?? {};
      return reqs.every((r) => test(r, Object.prototype.hasOwnProperty.call(labels, r.key) ? labels[r.key] : undefined));
    },
  };
}

/** Reads a dotted field path such as `metadata.name` or `status.phase`; absent fields compare as ''. */
function fieldValue(obj: KubeObject, path: string): string {
  let cur: unknown = obj;
  for (const seg of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return '';
    cur = (cur as Record<string, unknown>)[seg];
  }
  return cur === undefined || cur === null ? '' : String(cur);
}

export function parseFieldSelector(text: string | null | undefined): Selector {
  if (!text || !text.trim()) return MATCH_ALL;
  const reqs = splitTopLevel(text).map((p) => parseRequirement(p, 'field'));
  for (const r of reqs) {
    if (r.op !== 'eq' && r.op !== 'neq') throw badRequest(`invalid field selector "${text}": only =, == and != are supported`);
  }
  return {
    empty: false,
    matches: (obj) => reqs.every((r) => test(r, fieldValue(obj, r.key))),
  };
}

/** Both selectors of one request combined. */
export function bothSelectors(labels: Selector, fields: Selector): Selector {
  if (labels.empty) return fields;
  if (fields.empty) return labels;
  return { empty: false, matches: (obj) => labels.matches(obj) && fields.matches(obj) };
}
