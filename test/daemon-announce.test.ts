/**
 * When the daemon tells its listeners ('storeLoaded': presence, call control) about a new store
 * state: once the apply of that state has sent its Reload, never before (a listener's work must
 * not delay the reload), and also when no apply follows.
 */
import { rmSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AmiClient } from '../src/asterisk/ami/client.js';
import type { AmiPort } from '../src/apply/index.js';
import { Applier } from '../src/apply/index.js';
import { Daemon, type ApplierPort, type DaemonApplyReport } from '../src/daemon/daemon.js';
import { PeerDisconnectedError } from '../src/errors.js';
import type { Backend, Store } from '../src/model/types.js';
import { Renderer } from '../src/render/render.js';
import { loadTemplates } from '../src/render/templates.js';
import { YamlStore } from '../src/store/yaml-store.js';
import { StubApplier, captureLogger, edit, storeWithFakeAsterisk, tempStore } from './helpers/daemon-harness.js';
import { nextEvent, waitFor } from './helpers/wait.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** An ApplierPort that records, in `log`, when it is called and when it writes its Reload. */
class RecordingApplier implements ApplierPort {
  constructor(private readonly inner: ApplierPort, private readonly log: string[]) {}
  apply(store: Store, opts?: { backend?: Backend; onReloadSent?: () => void }): Promise<DaemonApplyReport> {
    this.log.push('apply');
    return this.inner.apply(store, opts);
  }
}

describe("Daemon 'storeLoaded'", () => {
  it('with the real Applier: after the Reload is written and before the apply ends', async () => {
    const secret = 'Ami-Announce-5ecret';
    const { dirs, port } = await storeWithFakeAsterisk(cleanups, secret);
    const { logger } = captureLogger('silent');
    const client = new AmiClient({ host: '127.0.0.1', port, username: 'switchboard', secret }, logger);
    client.start();
    await client.waitConnected(2000);
    cleanups.push(() => client.stop());
    const order: string[] = [];
    const ami: AmiPort = {
      get connected() {
        return client.connected;
      },
      action: (name, fields, opts) => {
        order.push(name === 'Reload' ? `Reload:${String(fields?.['Module'])}` : name);
        return client.action(name, fields, opts);
      },
      listAction: (name, fields, opts) => {
        order.push(name);
        return client.listAction(name, fields, opts);
      },
    };
    const applier = new Applier({ renderer: new Renderer(loadTemplates()), outDir: dirs.out, ami, logger, verifyTimeoutMs: 500 });
    const daemon = new Daemon({ store: new YamlStore(dirs.store), applier: new RecordingApplier(applier, order), logger, ami: client, debounceMs: 20, amiStartWaitMs: 0 });
    cleanups.push(() => daemon.stop());
    daemon.on('storeLoaded', () => order.push('storeLoaded'));
    daemon.on('applied', () => order.push('applied'));
    await daemon.start();
    expect(order[0]).toBe('apply');
    expect(order[1]).toMatch(/^Reload:/);
    expect(order[2]).toBe('storeLoaded');
    expect(order.at(-1)).toBe('applied');
    expect(order.filter((o) => o === 'storeLoaded')).toHaveLength(1);

    order.length = 0;
    const applied = nextEvent(daemon, 'applied', 5000);
    edit(path.join(dirs.store, 'agents', '1001-alice.yaml'), /^lastName: .*$/m, 'lastName: Announced');
    await applied;
    expect(order.slice(0, 3)).toEqual(['apply', 'Reload:res_pjsip.so', 'storeLoaded']);
    expect(order.at(-1)).toBe('applied');
    expect(order.filter((o) => o === 'storeLoaded')).toHaveLength(1);
  });

  it('with an applier that never says it sent a Reload: once it returns; a failing listener fails nothing', async () => {
    const dirs = tempStore();
    cleanups.push(() => rmSync(dirs.root, { recursive: true, force: true }));
    const { logger, lines } = captureLogger();
    const order: string[] = [];
    const daemon = new Daemon({ store: new YamlStore(dirs.store), applier: new RecordingApplier(new StubApplier(dirs.out), order), logger, debounceMs: 20, amiStartWaitMs: 0 });
    cleanups.push(() => daemon.stop());
    daemon.on('storeLoaded', (s) => {
      order.push(`storeLoaded:${s.agents.length}`);
      throw new Error('listener broke');
    });
    daemon.on('applied', () => order.push('applied'));
    await daemon.start();
    expect(order).toEqual(['apply', 'storeLoaded:13', 'applied']);
    expect(lines.some((l) => l.level === 50 && /'storeLoaded' listener failed: listener broke/.test(l.msg))).toBe(true);
  });

  it('when no apply follows (a retry is pending while AMI is down): at once', async () => {
    const dirs = tempStore();
    cleanups.push(() => rmSync(dirs.root, { recursive: true, force: true }));
    const { logger } = captureLogger('silent');
    const stub = new StubApplier(dirs.out);
    stub.failNext(new PeerDisconnectedError('AMI', 'apply'));
    const down = { connected: false, on: () => undefined, off: () => undefined };
    const daemon = new Daemon({ store: new YamlStore(dirs.store), applier: stub, logger, ami: down, debounceMs: 20, amiStartWaitMs: 0, retryInitialMs: 60_000, retryMaxMs: 60_000 });
    cleanups.push(() => daemon.stop());
    const seen: string[] = [];
    daemon.on('storeLoaded', (s) => seen.push(s.agents.find((a) => a.username === 'alice.smith')!.lastName));
    const failed = nextEvent(daemon, 'applyFailed', 5000);
    await daemon.start();
    await failed;
    expect(seen).toHaveLength(1);
    edit(path.join(dirs.store, 'agents', '1001-alice.yaml'), /^lastName: .*$/m, 'lastName: NotApplied');
    await waitFor(() => seen.includes('NotApplied'), 5000);
    expect(stub.calls).toHaveLength(1);
    expect(daemon.latestStore?.agents.find((a) => a.username === 'alice.smith')?.lastName).toBe('NotApplied');
  });
});
