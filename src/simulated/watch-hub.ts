import type { ServerResponse } from 'node:http';
import { apiVersionOf, type KubeObject, type ResourceDef } from './resources.js';
import type { Selector } from './selectors.js';
import { tooOld, type Status } from './status.js';
import type { ObjectStore, StoredEvent } from './store.js';

export interface WatchRequest {
  def: ResourceDef;
  namespace?: string;
  selector: Selector;
  allowBookmarks: boolean;
  /** Turns each object into what this watcher's client asked for (e.g. a kubectl Table row); identity by default. */
  render?: (obj: KubeObject, type: string) => unknown;
}

interface Watcher extends WatchRequest {
  res: ServerResponse;
  /** Set by a stall of the watches open at that time; connections opened later are not stalled. */
  stalled: boolean;
  /** Lines held back while stalled; written, in order, when the stall ends, lost if the watch is dropped first. */
  pending: string[];
  /** Lines of the current turn of the event loop, written together at its end (see write()). */
  batch: string[];
  timer?: NodeJS.Timeout;
  bookmarkTimer?: NodeJS.Timeout;
  /** When the watch's timeoutSeconds ends it (ms since the epoch), if it has one. */
  deadline?: number;
  deadlineBookmarkSent?: boolean;
}

type WireType = 'ADDED' | 'MODIFIED' | 'DELETED';

/**
 * Open watch connections and the broadcast of store events to them. Each event is serialised once
 * and then written to every watcher of its resource whose namespace and selector it matches.
 */
export class WatchHub {
  private readonly watchers = new Map<string, Set<Watcher>>();
  private readonly json = new WeakMap<KubeObject, string>();

  constructor(private readonly store: ObjectStore, private readonly bookmarkIntervalMs: number) {
    store.onEvent((def, event) => this.broadcast(def, event));
  }

  /**
   * Starts streaming: the current objects (resourceVersion absent or "0") or the history after the given
   * resourceVersion, then live events. A resourceVersion older than the history gets one ERROR event
   * carrying a 410 Status, and the response ends, as the real API server does.
   */
  open(req: WatchRequest, res: ServerResponse, resourceVersion: number | undefined, timeoutSeconds?: number): void {
    res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private' });
    res.flushHeaders();
    const w: Watcher = { ...req, res, stalled: false, pending: [], batch: [] };
    if (resourceVersion === undefined || resourceVersion === 0) {
      for (const obj of this.store.list(req.def, req.namespace)) {
        if (req.selector.matches(obj)) this.write(w, this.line('ADDED', obj, w));
      }
    } else {
      const history = this.store.history(req.def, resourceVersion);
      if ('expired' in history) {
        res.end(errorLine(tooOld(resourceVersion, history.oldest)));
        return;
      }
      for (const event of history.events) this.deliver(w, event);
    }
    this.register(w, timeoutSeconds);
  }

  count(resource?: string): number {
    if (resource) return this.watchers.get(resource)?.size ?? 0;
    let n = 0;
    for (const set of this.watchers.values()) n += set.size;
    return n;
  }

  /** Destroys the sockets of open watches: the client sees the stream break mid-way. */
  drop(resource?: string): void {
    for (const w of this.select(resource)) {
      w.pending = [];
      w.res.socket?.destroy();
    }
  }

  /** Ends open watches cleanly, as the real server does when a watch's timeout expires. */
  end(resource?: string): void {
    for (const w of this.select(resource)) {
      w.pending = [];
      this.finish(w);
    }
  }

  /** Stalls the watches open now, or resumes every stalled watch with what it held back. */
  setStalled(stalled: boolean): void {
    for (const w of this.select()) {
      if (stalled) {
        this.flushBatch(w); // what was sent before the stall is not held back
        w.stalled = true;
        continue;
      }
      w.stalled = false;
      const lines = w.pending.splice(0);
      if (lines.length && !w.res.writableEnded) w.res.write(lines.join(''));
    }
  }

  stop(): void {
    for (const w of this.select()) clearTimeout(w.bookmarkTimer);
    this.drop();
    this.watchers.clear();
  }

  private register(w: Watcher, timeoutSeconds?: number): void {
    let set = this.watchers.get(w.def.plural);
    if (!set) {
      set = new Set();
      this.watchers.set(w.def.plural, set);
    }
    set.add(w);
    w.res.on('close', () => this.unregister(w));
    // A write racing a client that went away must not surface as an unhandled 'error' event.
    w.res.on('error', () => this.unregister(w));
    // A timeout ends the watch cleanly once what it holds back (if stalled) is out.
    if (timeoutSeconds && timeoutSeconds > 0) {
      w.deadline = Date.now() + timeoutSeconds * 1000;
      w.timer = setTimeout(() => this.finish(w), timeoutSeconds * 1000);
    }
    if (w.allowBookmarks) this.scheduleBookmark(w);
  }

  private unregister(w: Watcher): void {
    clearTimeout(w.timer);
    clearTimeout(w.bookmarkTimer);
    this.watchers.get(w.def.plural)?.delete(w);
  }

  /**
   * follows kubernetes staging/src/k8s.io/apiserver/pkg/storage/cacher/cache_watcher.go nextBookmarkTime:
   * a bookmark about every bookmarkFrequency (cacher.go defaultBookmarkFrequency, a minute), or 2 s before
   * the watch's deadline if that comes first; none when that moment has already passed.
   */
  private scheduleBookmark(w: Watcher): void {
    const now = Date.now();
    let at = now + this.bookmarkIntervalMs;
    let beforeDeadline = false;
    if (w.deadline !== undefined && w.deadline - 2000 < at) {
      if (w.deadlineBookmarkSent) return;
      at = w.deadline - 2000;
      beforeDeadline = true;
    }
    if (at < now) return;
    w.bookmarkTimer = setTimeout(() => {
      if (beforeDeadline) w.deadlineBookmarkSent = true;
      this.sendBookmark(w);
      if (this.watchers.get(w.def.plural)?.has(w)) this.scheduleBookmark(w);
    }, at - now);
    w.bookmarkTimer.unref();
  }

  /** Ends the response and forgets the watcher at once, so that no event is written after the end. */
  private finish(w: Watcher): void {
    this.unregister(w);
    w.res.end([...w.pending.splice(0), ...w.batch.splice(0)].join(''));
  }

  private select(resource?: string): Watcher[] {
    const sets = resource ? [this.watchers.get(resource) ?? new Set<Watcher>()] : [...this.watchers.values()];
    return sets.flatMap((s) => [...s]);
  }

  private broadcast(def: ResourceDef, event: StoredEvent): void {
    const set = this.watchers.get(def.plural);
    if (!set) return;
    for (const w of set) this.deliver(w, event);
  }

  /** Writes one event as this watcher sees it: an object that leaves its selector is DELETED for it, one that enters is ADDED. */
  private deliver(w: Watcher, event: StoredEvent): void {
    const obj = event.object;
    if (w.namespace !== undefined && obj.metadata.namespace !== w.namespace) return;
    let type: WireType = event.type;
    if (event.type === 'MODIFIED' && !w.selector.empty) {
      const was = event.previous ? w.selector.matches(event.previous) : false;
      const is = w.selector.matches(obj);
      if (!was && !is) return;
      if (was !== is) type = is ? 'ADDED' : 'DELETED';
    } else if (!w.selector.matches(obj)) {
      return;
    }
    this.write(w, this.line(type, obj, w));
  }

  private line(type: WireType, obj: KubeObject, w: Watcher): string {
    if (w.render) return `{"type":"${type}","object":${JSON.stringify(w.render(obj, type))}}\n`;
    let json = this.json.get(obj);
    if (json === undefined) {
      json = JSON.stringify(obj);
      this.json.set(obj, json);
    }
    return `{"type":"${type}","object":${json}}\n`;
  }

  /**
   * Queues a line for the watcher. Lines written in one synchronous burst (readyAll() changes
   * thousands of objects) go out as one chunk at the end of the turn, as the API server's watch cache
   * sends what it has; one HTTP chunk per event would cost more than the events themselves.
   */
  private write(w: Watcher, line: string): void {
    if (w.res.writableEnded || w.res.destroyed) return;
    if (w.stalled) {
      w.pending.push(line);
      return;
    }
    w.batch.push(line);
    if (w.batch.length === 1) process.nextTick(() => this.flushBatch(w));
  }

  private flushBatch(w: Watcher): void {
    const lines = w.batch.splice(0);
    if (!lines.length || w.res.writableEnded || w.res.destroyed) return;
    if (w.stalled) w.pending.push(...lines);
    else w.res.write(lines.join(''));
  }

  private sendBookmark(w: Watcher): void {
    if (w.stalled || w.res.writableEnded) return;
    const object = { kind: w.def.kind, apiVersion: apiVersionOf(w.def), metadata: { resourceVersion: String(this.store.currentRv()) } };
    this.write(w, `{"type":"BOOKMARK","object":${JSON.stringify(object)}}\n`);
  }
}

function errorLine(status: Status): string {
  return `{"type":"ERROR","object":${JSON.stringify(status)}}\n`;
}
