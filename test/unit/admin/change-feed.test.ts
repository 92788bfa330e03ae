import { EventEmitter } from 'node:events';
import type http from 'node:http';
import { ChangeFeed, MAX_WAITERS } from '../../../dataplane/admin/status-overview';

function feed(): { changes: ChangeFeed; change: () => void; subscribed: () => number } {
  const listeners = new Set<() => void>();
  const changes = new ChangeFeed({
    onChange: (l) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
  });
  return { changes, change: () => listeners.forEach((l) => l()), subscribed: () => listeners.size };
}

const response = (): http.ServerResponse => new EventEmitter() as unknown as http.ServerResponse;

describe('ChangeFeed', () => {
  it('subscribes only once someone asks, so a node nobody watches pays nothing per change', async () => {
    const { changes, subscribed } = feed();
    expect(subscribed()).toBe(0);
    await changes.wait(null, response());
    await changes.wait(null, response());
    expect(subscribed()).toBe(1);
  });

  it('parks a request for the current version until a change, and lets a client that goes release its place', async () => {
    const { changes, change } = feed();
    await changes.wait(null, response());
    let woke = false;
    const parked = changes.wait('0', response()).then(() => (woke = true));
    const leaving = response();
    const gone = changes.wait('0', leaving);
    leaving.emit('close');
    await gone;
    await Promise.resolve();
    expect(woke).toBe(false);
    change();
    await parked;
    expect(changes.version).toBe(1);
  });

  it(`answers at once beyond ${MAX_WAITERS} parked requests`, async () => {
    const { changes, change } = feed();
    await changes.wait(null, response());
    const parked = Array.from({ length: MAX_WAITERS }, () => changes.wait('0', response()));
    let answered = false;
    await changes.wait('0', response()).then(() => (answered = true));
    expect(answered).toBe(true);
    change();
    await Promise.all(parked);
  });
});
