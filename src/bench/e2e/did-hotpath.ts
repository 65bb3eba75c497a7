/**
 * The daemon's StasisStart hot path in one process, without sockets: the real AriClient (taken to
 * the connected state with REST over the events socket on a stub socket that counts bytes), the
 * real PresenceService on the 10k store (40% of the called agents paused by hand) and the real
 * DidWorkflow (call records stubbed: nothing is written). Each round hands `calls` StasisStart
 * texts, as the bench FakeAri makes them, to AriClient's message handler in slices of 110 (one
 * socket read of the end-to-end benchmark), yielding to the event loop between slices, and reports
 * the time per event from the slice's first event to the end of its tick: JSON.parse, presence,
 * the decision, the first request's text, and the slice's frames encoded and written (to the stub)
 * at the end of the tick. The frame parsing (ServerFrameParser) is not included, nor presence's
 * listener for every event (the daemon's `ari.on('event')`: no facts come from a StasisStart).
 * Requests are never answered: the run ends before their timeouts.
 *
 *   node dist/bench/e2e/did-hotpath.js [store] [calls=500] [rounds=24]
 *
 * Prints µs per event for each round and the median of the last 6 (the first rounds run before
 * V8 has optimised the path).
 */
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AriClient } from '../../asterisk/ari/client.js';
import type { CallRecords } from '../../calls/records.js';
import type { EmailTemplates } from '../../mail/voicemail-email.js';
import { PresenceService } from '../../presence/service.js';
import { YamlStore } from '../../store/yaml-store.js';
import { DidWorkflow } from '../../workflows/did.js';
import { fileLogger } from './common.js';
import { FakeAri } from './fake-ari.js';
import { summarise } from '../stats.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const storeDir = process.argv[2] ?? path.join(root, '.bench/stores/agents-10000-seed-20240611');
const calls = Number(process.argv[3] ?? 500);
const rounds = Number(process.argv[4] ?? 24);
const SLICE = 110;

const tmp = mkdtempSync(path.join(os.tmpdir(), 'switchboard-did-hotpath-'));
const logger = fileLogger(path.join(tmp, 'daemon.log'), 'info');
const loaded = await new YamlStore(storeDir).loadAll();
const store = loaded.store;
if (!store) throw new Error(`store ${storeDir} is invalid`);
const agents = store.agents.filter((a) => a.enabled && a.dids.length > 0).slice(0, 2000);
const presence = new PresenceService({ stateFile: path.join(tmp, 'presence.json'), logger });
presence.setAgents(store);
for (let i = 0; i < agents.length; i++) if (i % 5 < 2) await presence.setManual(agents[i]!.id, 'paused', { reason: 'bench' });

const client = new AriClient({ url: 'http://127.0.0.1:1', username: 'bench', password: 'bench-secret', app: store.settings.dialplan.stasisApp }, { logger });
let written = 0;
const ws = Object.assign(new EventEmitter(), {
  readyState: 1,
  _socket: { destroyed: false, writable: true, write: (b: Buffer): boolean => { written += b.length; return true; } },
  send: (): void => undefined, ping: (): void => undefined, close: (): void => undefined, terminate: (): void => undefined,
});
// Connected, REST over the events socket (what the connect and the probe would have set).
Object.assign(client as unknown as Record<string, unknown>, { state: 'connected', ws, restWs: ws, lib: {} });
const noop = (): void => undefined;
const records = new Proxy({}, { get: () => noop }) as unknown as CallRecords;
const workflow = new DidWorkflow({
  ari: client, presence, store: () => store, records, outbox: { enqueue: () => Promise.reject(new Error('no mail in this benchmark')) },
  templates: {} as EmailTemplates, logger,
  settings: { voicemail: { maxDurationSeconds: 120, maxSilenceSeconds: 10, minDurationSeconds: 2 }, recordingsDir: path.join(tmp, 'recordings') },
});
workflow.start();
const onMessage = (client as unknown as { onMessage(data: unknown): void }).onMessage.bind(client);
const fake = new FakeAri({ docsDir: path.join(root, 'test/fakes/ari-docs'), username: 'u', password: 'p', app: store.settings.dialplan.stasisApp, endpoints: [] });

const perEvent: number[] = [];
let next = 0;
for (let r = 0; r < rounds; r++) {
  const texts: string[] = [];
  for (let i = 0; i < calls; i++) {
    const a = agents[next++ % agents.length]!;
    texts.push(fake.prepareCall(fake.newChannelId(), a.dids[0]!, `+6140${1_000_000 + i}`, 'Bench Caller'));
  }
  let busy = 0;
  for (let s = 0; s < calls; s += SLICE) {
    const t0 = performance.now();
    for (let i = s; i < Math.min(calls, s + SLICE); i++) onMessage(texts[i]);
    // Up to the end of the tick: the slice's frames are encoded and written there (AriClient's flush).
    await new Promise<void>((resolve) => process.nextTick(resolve));
    busy += performance.now() - t0;
    await new Promise((resolve) => setImmediate(resolve));
  }
  perEvent.push((busy * 1000) / calls);
  await new Promise((resolve) => setTimeout(resolve, 60)); // the calls' deferred starts run
}
const last = summarise(perEvent.slice(-6)).median;
process.stdout.write(`${JSON.stringify({
  calls, rounds, usPerEvent: perEvent.map((x) => Math.round(x * 100) / 100),
  medianLast6: Math.round(last * 100) / 100, bytesWritten: written,
})}\n`);
rmSync(tmp, { recursive: true, force: true });
process.exit(0);
