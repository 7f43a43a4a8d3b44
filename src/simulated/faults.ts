import type { ObjectStore } from './store.js';
import type { WatchHub } from './watch-hub.js';

export type FaultVerb = 'get' | 'list' | 'create' | 'delete' | 'watch' | 'patch' | 'update' | 'deletecollection';
/** An HTTP status code answered with a Status, 'timeout' (accept, never answer) or 'reset' (destroy the socket). */
export type Failure = number | 'timeout' | 'reset';

export interface FaultInjector {
  /** Fail the nth (1-based, counted from now) request matching verb+resource: answer a Status with `status` code (e.g. 500, 403, 409, 422), or 'timeout' (accept and never answer), or 'reset' (destroy the socket). */
  failRequest(match: { verb: FaultVerb; resource: string; nth?: number }, failure: Failure): void;
  /**
   * Close every open watch connection (of one resource or all) mid-stream. 'reset' (the default) destroys the
   * socket; 'end' ends the chunked response cleanly, as the real server does when a watch times out.
   */
  dropWatches(resource?: string, how?: 'reset' | 'end'): void;
  /** Forget event history: any watch or list-then-watch from an older resourceVersion gets 410 Gone (as an ERROR watch event carrying a Status with code 410, exactly as the real API server does). */
  compact(): void;
  /** Make the whole API unavailable until up(): open watches are dropped and every request gets a 503 Status (default) or a connection reset. */
  down(failure?: 503 | 'reset'): void;
  up(): void;
  /**
   * Stop sending anything on the watches open now (no events, no bookmarks) without closing them: a silent stall,
   * like a half-open connection. Watches opened later are not stalled. With `false`, held events are delivered in
   * order; a stalled watch that is dropped first loses them.
   */
  stallWatches(stalled: boolean): void;
  /** Forget pending request failures, bring the API up and end a stall. */
  clear(): void;
}

interface Rule {
  verb: string;
  resource: string;
  remaining: number;
  failure: Failure;
}

export class Faults implements FaultInjector {
  private rules: Rule[] = [];
  private unavailable: 503 | 'reset' | undefined;

  constructor(private readonly store: ObjectStore, private readonly hub: WatchHub) {}

  failRequest(match: { verb: FaultVerb; resource: string; nth?: number }, failure: Failure): void {
    const nth = match.nth ?? 1;
    if (!Number.isInteger(nth) || nth < 1) throw new Error(`nth must be a positive integer, got ${nth}`);
    this.rules.push({ verb: match.verb, resource: match.resource, remaining: nth, failure });
  }

  dropWatches(resource?: string, how: 'reset' | 'end' = 'reset'): void {
    if (how === 'end') this.hub.end(resource);
    else this.hub.drop(resource);
  }

  compact(): void {
    this.store.compact();
  }

  down(failure: 503 | 'reset' = 503): void {
    this.unavailable = failure;
    this.hub.drop();
  }

  up(): void {
    this.unavailable = undefined;
  }

  stallWatches(stalled: boolean): void {
    this.hub.setStalled(stalled);
  }

  clear(): void {
    this.rules = [];
    this.up();
    this.hub.setStalled(false);
  }

  /** How the API is unavailable right now, if it is. */
  outage(): 503 | 'reset' | undefined {
    return this.unavailable;
  }

  /**
   * Counts one request against every matching rule and returns the failure of the first rule that comes due;
   * another rule due on the same request fires on the next matching one instead.
   */
  take(verb: string, resource: string): Failure | undefined {
    let due: Failure | undefined;
    for (const rule of this.rules) {
      if (rule.verb !== verb || rule.resource !== resource) continue;
      rule.remaining--;
      if (rule.remaining === 0 && due === undefined) due = rule.failure;
      else if (rule.remaining === 0) rule.remaining = 1;
    }
    if (due !== undefined) this.rules = this.rules.filter((r) => r.remaining > 0);
    return due;
  }
}
