/**
 * The DID workflow under a burst: every caller's first action (ring for an available agent, answer
 * before voicemail for a paused one) is sent from the StasisStart handler itself, before the rest
 * of any call's start (call record, originate, greeting lookup) — the property that keeps a burst's
 * last caller from waiting behind the bookkeeping of all the others (BENCHMARKS.md, issue 4).
 */
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CallRecords } from '../src/calls/records.js';
import { silentLogger } from '../src/log.js';
import type { Store } from '../src/model/types.js';
import { loadStore } from '../src/store/yaml-store.js';
import { DidWorkflow } from '../src/workflows/did.js';
import { waitFor } from './helpers/wait.js';

let store: Store;
let dir: string;
beforeAll(async () => {
  const r = await loadStore(join(import.meta.dirname, '..', 'fixtures', 'store'));
  if (!r.store) throw new Error('fixtures/store must be valid');
  store = r.store;
});
afterEach(() => { if (dir) rmSync(dir, { recursive: true, force: true }); });

/** An AriPort that records each request when it is made, answering every one at once. */
class RecordingAri extends EventEmitter {
  readonly log: string[] = [];
  private op(name: string, id?: string): Promise<never> {
    this.log.push(id ? `${name} ${id}` : name);
    return Promise.resolve() as Promise<never>;
  }
  answer(id: string) { return this.op('answer', id); }
  ring(id: string) { return this.op('ring', id); }
  ringStop(id: string) { return this.op('ringStop', id); }
  hangup(id: string) { return this.op('hangup', id); }
  continueInDialplan(id: string) { return this.op('continue', id); }
  async play(id: string, _m: string[], playbackId?: string) { this.log.push(`play ${id}`); return { id: playbackId ?? 'pb' }; }
  async record(id: string, o: { name: string }) { this.log.push(`record ${id}`); return { name: o.name }; }
  async originate(o: { channelId?: string }) { this.log.push(`originate ${o.channelId}`); return { id: o.channelId ?? 'x' }; }
  async createBridge() { return { id: 'b' }; }
  addChannel() { return this.op('addChannel'); }
  destroyBridge() { return this.op('destroyBridge'); }
  async getChannel() { return undefined; }
  async listChannels() { return []; }
  async listBridges() { return []; }
  async listEndpoints() { return []; }
  async getStoredRecordingFile(): Promise<Buffer> { throw new Error('none'); }
  deleteStoredRecording() { return this.op('deleteStored'); }
  async getLiveRecording() { return undefined; }
  async getPlayback() { return undefined; }
  async getStoredRecording(name: string) { this.log.push(`getStored ${name}`); return undefined; }
  get connected() { return true; }
}

type Lookup = ConstructorParameters<typeof DidWorkflow>[0]['presence'];

function setup(paused: Set<string>, presence?: Lookup) {
    dir = mkdtempSync(join(tmpdir(), 'burst-'));
    const ari = new RecordingAri();
    const records = CallRecords.open(join(dir, 'calls.sqlite'));
    const wf = new DidWorkflow({
      ari: ari as never, records, store: () => store,
      presence: presence ?? { get: (id) => ({ state: paused.has(id) ? 'paused' : 'available' }) },
      outbox: { enqueue: async () => { throw new Error('no mail in this test'); } },
      templates: {} as never, logger: silentLogger(),
      settings: { voicemail: { maxDurationSeconds: 60, maxSilenceSeconds: 5, minDurationSeconds: 2 }, recordingsDir: join(dir, 'rec'), app: 'switchboard' },
    });
    wf.start();
    return { ari, records, wf };
}

function stasisStart(id: string, did: string) {
  return { type: 'StasisStart', args: [did], channel: { id, name: `PJSIP/trunk-${id}`, state: 'Ring', caller: { name: '', number: '+61400000000' }, dialplan: { context: 'switchboard-dids', exten: did, priority: 2 } } };
}

const started = (log: string[]): number => log.filter((l) => l.startsWith('originate') || l.startsWith('getStored')).length;

describe('DID workflow under a burst of calls', () => {
  it('sends every first action from the StasisStart handler, before any call goes further', async () => {
    const withDid = store.agents.filter((a) => a.dids.length > 0);
    const paused = new Set(withDid.filter((_, i) => i % 2 === 1).map((a) => a.id));
    const { ari, records, wf } = setup(paused);
    const calls = Array.from({ length: 60 }, (_, i) => {
      const agent = withDid[i % withDid.length]!;
      return { id: `in-${i}`, agent, did: agent.dids[0]! };
    });
    // One synchronous loop, as ws delivers the frames of one socket read.
    for (const c of calls) ari.emit('StasisStart', stasisStart(c.id, c.did));
    // Synchronously: one first action per call, the right one, and nothing else yet.
    expect(ari.log).toEqual(calls.map((c) => `${c.agent.enabled && !paused.has(c.agent.id) ? 'ring' : 'answer'} ${c.id}`));
    // Then each call goes on: originate for the rung ones, the greeting for the others.
    await waitFor(() => started(ari.log) === calls.length, 3000);
    await wf.stop();
    records.close();
  });

  it('a steady stream of calls (never 2 ms without one) still gets its calls started, not only after it ends', async () => {
    const withDid = store.agents.filter((a) => a.dids.length > 0 && a.enabled);
    const { ari, records, wf } = setup(new Set());
    const arrivals: number[] = [];
    let shortfall = 0;
    for (let i = 0; i < 250; i++) {
      const agent = withDid[i % withDid.length]!;
      ari.emit('StasisStart', stasisStart(`s-${i}`, agent.dids[0]!));
      arrivals.push(performance.now());
      await new Promise((resolve) => setTimeout(resolve, 1));
      // calls that arrived well over the longest wait (50 ms) ago must have been started
      const due = arrivals.filter((t) => performance.now() - t > 150).length;
      shortfall = Math.max(shortfall, due - started(ari.log));
    }
    expect(shortfall).toBeLessThanOrEqual(0);
    await waitFor(() => started(ari.log) === 250, 3000);
    await wf.stop();
    records.close();
  });

  it('a presence lookup that throws: the agent is rung (no answer still ends in voicemail)', async () => {
    const agent = store.agents.find((a) => a.enabled && a.dids.length > 0)!;
    const { ari, records, wf } = setup(new Set(), { get: () => { throw new Error('presence is down'); } });
    ari.emit('StasisStart', stasisStart('t-1', agent.dids[0]!));
    expect(ari.log).toEqual(['ring t-1']);
    await waitFor(() => started(ari.log) === 1, 3000);
    expect(ari.log.some((l) => l.startsWith('originate '))).toBe(true);
    expect(records.query({ from: new Date(Date.now() - 60_000), to: new Date(Date.now() + 60_000) })).toMatchObject([{ callType: 'Direct Agent Call', outcome: 'in progress' }]);
    await wf.stop();
    records.close();
  });

  it('an asynchronous presence lookup takes the ordinary path: first action after the lookup, divert when paused', async () => {
    const agent = store.agents.find((a) => a.enabled && a.dids.length > 0)!;
    const { ari, records, wf } = setup(new Set(), { get: async () => ({ state: 'paused', reason: 'Lunch' }) });
    ari.emit('StasisStart', stasisStart('a-1', agent.dids[0]!));
    expect(ari.log).toEqual([]);
    await waitFor(() => ari.log.includes('answer a-1'), 3000);
    expect(ari.log).not.toContain('ring a-1');
    await waitFor(() => started(ari.log) === 1, 3000);
    await wf.stop();
    records.close();
  });
  it('indexStore builds the DID index when the store is loaded, so that the first call does not walk every agent', async () => {
    const original = store;
    let reads = 0;
    const counted = { settings: original.settings, get agents() { reads++; return original.agents; } } as Store;
    const agent = original.agents.find((a) => a.enabled && a.dids.length > 0)!;
    /** One call to the agent on a fresh workflow (indexed first or not); the agent lists read meanwhile. */
    const oneCall = async (id: string, index: boolean): Promise<{ byIndex: number; byCall: number }> => {
      const { ari, records, wf } = setup(new Set());
      const before = reads;
      if (index) wf.indexStore(counted);
      const indexed = reads;
      ari.emit('StasisStart', stasisStart(id, agent.dids[0]!));
      expect(ari.log).toEqual([`ring ${id}`]);
      const byCall = reads - indexed;
      await waitFor(() => started(ari.log) === 1, 3000);
      await wf.stop();
      records.close();
      rmSync(dir, { recursive: true, force: true });
      return { byIndex: indexed - before, byCall };
    };
    store = counted;
    try {
      // Indexed beforehand (as the daemon does on 'storeLoaded'): the call reads no agent list.
      const first = await oneCall('i-1', true);
      expect(first.byIndex).toBeGreaterThan(0);
      expect(first.byCall).toBe(0);
      // Not indexed: the first call builds the index itself (and still rings the right agent).
      expect((await oneCall('i-2', false)).byCall).toBeGreaterThan(0);
    } finally {
      store = original;
    }
  });
});
