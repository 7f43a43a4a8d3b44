import { describe, expect, it } from 'vitest';
import { LabInstanceStatus, VmPhase } from '../src/entities/index.js';
import { instanceStream } from '../src/services/lab-instance.stream.js';
import { InstanceEvents, type InstanceSnapshot } from '../src/services/lab-instance.events.js';

const snap = (id: number, status: LabInstanceStatus, n = 0): InstanceSnapshot => ({
  id,
  labId: 1,
  userId: 1,
  namespace: `ns-${id}`,
  status,
  statusMessage: `change ${n}`,
  vms: [{ name: 'vm', phase: VmPhase.RUNNING, ready: false }],
  createdAt: new Date(0),
  expiresAt: null,
  stoppedAt: null,
  at: new Date(),
});

describe('a subscription stream', () => {
  it('holds at most one pending event per instance for a reader that does not read', async () => {
    const events = new InstanceEvents();
    const stream = instanceStream(events, { visible: () => true, initial: [] });
    for (let n = 0; n < 10_000; n++) events.publish(snap(n % 3, LabInstanceStatus.STARTING, n));
    const received = [];
    for (let i = 0; i < 3; i++) received.push((await stream.next()).value as InstanceSnapshot);
    expect(received.map((s) => [s.id, s.statusMessage])).toEqual([
      [1, 'change 9997'],
      [2, 'change 9998'],
      [0, 'change 9999'],
    ]);
    await stream.return!();
    expect(events.listenerCount()).toBe(0);
  });

  it('starts with the current state, skips repeats, and ends after STOPPED', async () => {
    const events = new InstanceEvents();
    const stream = instanceStream(events, {
      instanceId: 7,
      visible: () => true,
      initial: [snap(7, LabInstanceStatus.STARTING)],
      completeAfter: (s) => s.status === LabInstanceStatus.STOPPED,
    });
    expect((await stream.next()).value.status).toBe('STARTING');
    events.publish(snap(7, LabInstanceStatus.STARTING)); // the same state again
    events.publish(snap(8, LabInstanceStatus.READY)); // another instance
    events.publish(snap(7, LabInstanceStatus.STOPPED));
    expect((await stream.next()).value.status).toBe('STOPPED');
    expect((await stream.next()).done).toBe(true);
    expect(events.listenerCount()).toBe(0);
  });

  it('waits while the socket is congested, and then sends only the newest state', async () => {
    const events = new InstanceEvents();
    let congested = true;
    const stream = instanceStream(events, { visible: () => true, initial: [], congested: () => congested });
    const next = stream.next();
    events.publish(snap(1, LabInstanceStatus.STARTING, 1));
    events.publish(snap(1, LabInstanceStatus.READY, 2));
    congested = false;
    expect((await next).value).toMatchObject({ status: 'READY', statusMessage: 'change 2' });
    await stream.return!();
  });
});
