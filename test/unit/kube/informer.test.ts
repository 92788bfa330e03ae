import { KubeApiError } from '../../../dataplane/kube/errors';
import { type Informer, type InformerHandlers } from '../../../dataplane/kube/informer';
import { ResilientInformer } from '../../../dataplane/kube/informer';

/** An informer that fails or lists when told to, like the library's: it stops after an error. */
class ScriptedInformer implements Informer {
  starts: number[] = [];
  running = false;
  constructor(readonly handlers: InformerHandlers<string>) {}
  async start(): Promise<void> {
    this.starts.push(Date.now());
    this.running = true;
  }
  async stop(): Promise<void> {
    this.running = false;
  }
  fail(): void {
    this.running = false;
    this.handlers.error(new KubeApiError('UNAVAILABLE', 'connection refused'));
  }
}

describe('ResilientInformer', () => {
  let inner: ScriptedInformer;
  let health: boolean[];
  let informer: ResilientInformer<string>;
  let seen: string[];

  beforeEach(() => {
    jest.useFakeTimers({ now: 0 });
    health = [];
    seen = [];
    informer = new ResilientInformer<string>({
      create: (handlers) => (inner = new ScriptedInformer(handlers)),
      upsert: (o) => seen.push(`+${o}`),
      remove: (o) => seen.push(`-${o}`),
      onHealthChange: (h) => health.push(h),
      backoff: { minMs: 500, maxMs: 4_000 },
    });
  });

  afterEach(async () => {
    await informer.stop();
    jest.useRealTimers();
  });

  it('is healthy after a list and resolves synced', async () => {
    informer.start();
    inner.handlers.upsert('a');
    inner.handlers.listed();
    await informer.synced;
    expect(informer.isHealthy).toBe(true);
    expect(health).toEqual([true]);
    expect(seen).toEqual(['+a']);
  });

  it('restarts after errors with doubling delays up to the cap, and resets once it delivers', async () => {
    informer.start();
    inner.handlers.listed();
    const delays: number[] = [];
    for (let i = 0; i < 6; i++) {
      const before = inner.starts.length;
      const at = Date.now();
      inner.fail();
      while (inner.starts.length === before) await jest.advanceTimersByTimeAsync(10);
      delays.push(Date.now() - at);
    }
    expect(health).toEqual([true, false]);
    expect(informer.isHealthy).toBe(false);
    // 500, 1000, 2000, 4000, 4000, 4000 with up to 10 % jitter (10 ms steps).
    const base = [500, 1000, 2000, 4000, 4000, 4000];
    delays.forEach((d, i) => {
      expect(d).toBeGreaterThanOrEqual(base[i]!);
      expect(d).toBeLessThanOrEqual(base[i]! * 1.1 + 10);
    });

    inner.handlers.upsert('b');
    expect(health).toEqual([true, false, true]);
    const at = Date.now();
    inner.fail();
    const before = inner.starts.length;
    while (inner.starts.length === before) await jest.advanceTimersByTimeAsync(10);
    expect(Date.now() - at).toBeLessThanOrEqual(560);
  });

  it('restarts when start() itself rejects', async () => {
    informer.start();
    const failing = inner;
    failing.start = async () => {
      failing.starts.push(Date.now());
      throw new Error('credential plugin failed');
    };
    failing.fail();
    await jest.advanceTimersByTimeAsync(3_000);
    expect(failing.starts.length).toBeGreaterThanOrEqual(3);
    expect(informer.lastError).toBeInstanceOf(Error);
  });

  it('drops what the informer delivers after stop, and stops it again', async () => {
    informer.start();
    await informer.stop();
    inner.running = true;
    inner.handlers.upsert('late');
    inner.handlers.listed();
    expect(seen).toEqual([]);
    expect(inner.running).toBe(false);
    expect(health).toEqual([]);
  });

  it('does not restart after stop', async () => {
    informer.start();
    inner.fail();
    await informer.stop();
    const starts = inner.starts.length;
    await jest.advanceTimersByTimeAsync(60_000);
    expect(inner.starts.length).toBe(starts);
  });
});
