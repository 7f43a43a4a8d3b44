import { LabInstanceStatus } from '../entities/index.js';
import type { InstanceEvents, InstanceSnapshot } from './lab-instance.events.js';

export interface StreamOptions {
  /** One instance, or undefined for every instance that `visible` admits. */
  instanceId?: number;
  visible: (s: InstanceSnapshot) => boolean;
  /** The current state, sent first. */
  initial: InstanceSnapshot[];
  /** Ends the stream after the event for which it returns true. */
  completeAfter?: (s: InstanceSnapshot) => boolean;
  /** True while the client's socket has too much unsent data; the stream then waits, coalescing. */
  congested?: () => boolean;
}

/** Computed once per snapshot: one snapshot object reaches every subscriber of its instance. */
const signatures = new WeakMap<InstanceSnapshot, string>();
function signature(s: InstanceSnapshot): string {
  let sig = signatures.get(s);
  if (sig === undefined) signatures.set(s, (sig = JSON.stringify([s.status, s.statusMessage, s.vms, s.expiresAt, s.stoppedAt])));
  return sig;
}

/**
 * A subscription's events, read either way: awaited one at a time (AsyncIterator), or pushed to a
 * deliverer that writes many subscriptions at once (onPending, then take() until it returns undefined).
 */
export interface InstanceStream extends AsyncIterableIterator<InstanceSnapshot> {
  /** Push mode: `listener` runs, synchronously, whenever an event starts waiting. */
  onPending(listener: () => void): void;
  /** The next event to send, `{ done: true }` once the stream has ended, undefined while nothing waits. */
  take(): IteratorResult<InstanceSnapshot, undefined> | undefined;
}

const DONE: IteratorReturnResult<undefined> = { value: undefined, done: true };

/**
 * A subscription's event stream with bounded memory: pending events are coalesced per instance
 * (the newest state replaces an unsent older one), so a slow reader holds at most one pending
 * event per instance it can see, and a state already sent is not sent again.
 */
export function instanceStream(events: InstanceEvents, opts: StreamOptions): InstanceStream {
  const pending = new Map<number, InstanceSnapshot>();
  const sent = new Map<number, string>();
  let wake: (() => void) | undefined;
  let notify: (() => void) | undefined;
  let done = false;

  const offer = (s: InstanceSnapshot) => {
    if (done || !opts.visible(s)) return;
    pending.delete(s.id); // re-insert at the end: per-instance order is kept, stale states dropped
    pending.set(s.id, s);
    wake?.();
    notify?.();
  };
  for (const s of opts.initial) offer(s);
  const unsubscribe = events.listen(opts.instanceId, offer);

  const finish = () => {
    done = true;
    unsubscribe();
    pending.clear();
    wake?.();
  };

  const take = (): IteratorResult<InstanceSnapshot, undefined> | undefined => {
    for (;;) {
      if (done) return DONE;
      const first = pending.values().next();
      if (first.done) return undefined;
      const s = first.value;
      pending.delete(s.id);
      const sig = signature(s);
      if (sent.get(s.id) === sig) continue;
      sent.set(s.id, sig);
      if (opts.completeAfter?.(s)) {
        done = true;
        unsubscribe();
      }
      return { value: s, done: false };
    }
  };

  const nextEvent = async (): Promise<IteratorResult<InstanceSnapshot, undefined>> => {
    for (;;) {
      while (opts.congested?.() && !done) await new Promise((r) => setTimeout(r, 50));
      const result = take();
      if (result) return result;
      await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
    }
  };

  return {
    next: nextEvent,
    take,
    onPending(listener) {
      notify = listener;
      if (pending.size) listener();
    },
    return: async () => {
      finish();
      return DONE;
    },
    throw: async (err) => {
      finish();
      throw err;
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}

export const completesAfterStopped = (s: InstanceSnapshot) => s.status === LabInstanceStatus.STOPPED;
