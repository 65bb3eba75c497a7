/**
 * DID call control (issue 4), one run: the fake ARI (fake-ari.ts) lives in this process, the
 * daemon with call control in a child process (did-daemon.ts), as `switchboard serve` would run.
 *
 *   node --expose-gc dist/bench/e2e/did-harness.js '{"store":DIR,"docsDir":DIR,"calls":500,"warmup":20,"pacedMs":10}'
 *
 * Calls go to distinct agents of the 10k store that have a DID: 60% available (registered, not
 * paused: the workflow rings the caller, then originates to the agent), 40% paused by hand (it
 * answers, then plays the voicemail greeting). Per call, the latency is from the moment the fake
 * hands StasisStart to the events socket to the moment the first REST request on that channel
 * (`ring` or `answer`) arrives at the fake: both times taken in this process.
 *
 * Phases: warm-up (calls one at a time, then `warmupBursts` rounds of calls at once; not counted);
 * burst (all `calls` StasisStart events framed beforehand and handed to the socket in one write;
 * every call's latency counts from the start of that write); paced (the same number of calls, one
 * every `pacedMs`; skipped when 0). After each phase every caller hangs up and the daemon is
 * left to settle. Prints one JSON line.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { YamlStore } from '../../store/yaml-store.js';
import type { Agent } from '../../model/types.js';
import { Child, maxRssMB, monoMs, progress, sleep } from './common.js';
import { summarise } from '../stats.js';
import { FakeAri } from './fake-ari.js';
import type { DidDaemonArgs } from './did-daemon.js';

export interface DidHarnessArgs {
  store: string;
  docsDir: string;
  calls: number;
  warmup: number;
  /** Spacing of the paced phase (ms); 0: no paced phase. */
  pacedMs: number;
  /** Share of the calls whose agent is paused (default 0.4). */
  pausedShare?: number;
  /**
   * After the one-at-a-time warm-up: `rounds` bursts of `calls` calls at once (to their own
   * agents, hung up after each round), so that the burst code paths (several events per socket
   * read, several requests per write) are as warm as in a daemon that has been handling calls.
   * Not counted. Default: none.
   */
  warmupBursts?: { rounds: number; calls: number };
}

export interface PhaseResult {
  calls: number;
  /** First-action latency per call (ms), in the order the calls were sent. */
  latency: number[];
  latencyAvailable: number[];
  latencyPaused: number[];
  /** First action seen per call: `channels.ring` / `channels.answer` counts. */
  firstOps: Record<string, number>;
  /** From the first StasisStart sent to the last call's set-up request (originate or play) received. */
  allSetUpMs: number;
  /** How long sending the StasisStart events took. */
  sendMs: number;
  /** CPU time of this process (the fake) from the first event sent to the last set-up request. */
  fakeCpuMs: number;
  /** TCP connections the daemon opened to the fake during the phase. */
  connections: number;
  /** RSS of the daemon process, sampled every 5 ms during the phase (MB), and its peak RSS after it. */
  peakRssMB: number;
  rssBeforeMB: number;
  maxRssAfterMB: number;
  heapUsedAfterMB: number;
}

export interface DidHarnessResult {
  agents: number;
  warmup: { latency: number[]; bursts?: { calls: number; p50: number; max: number }[] };
  burst: PhaseResult;
  paced?: PhaseResult & { pacedMs: number };
  daemon: { startMs: number; rssAtReadyMB: number; maxRssAtReadyMB: number; maxRssMB: number };
  requests: Record<string, number>;
  /** Requests that came as RESTRequest frames on the events socket (the rest came over HTTP). */
  viaWs: number;
  failures: string[];
  harnessMaxRssMB: number;
}

/**
 * A full collection of this process's heap (the fake's), run before each phase's first event: the
 * fake stands for Asterisk, which has no garbage collector, and a scavenge of the garbage left by
 * the store pick, the warm-up and the events just prepared stalled its event loop (and so its
 * timestamps) for 4-7 ms in the middle of a burst. The daemon's heap is left alone.
 */
const exposedGc = (globalThis as { gc?: () => void }).gc;
if (!exposedGc) throw new Error('did-harness needs `node --expose-gc` (the did-calls suite starts it so)');
const collectFakeGarbage: () => void = exposedGc;

const USER = 'asterisk';
const PASSWORD = 'Bench-Ari-5ecret';
const APP = 'switchboard';

/** The agents the calls go to: only what the fake needs, so that the store is not kept alive here. */
type CallAgent = Pick<Agent, 'id' | 'username' | 'dids'>;

async function pickAgents(storeDir: string, need: number): Promise<{ total: number; agents: CallAgent[] }> {
  const loaded = await new YamlStore(storeDir).loadAll();
  if (!loaded.store) throw new Error(`store ${storeDir} is invalid`);
  if (loaded.store.settings.dialplan.stasisApp !== APP) throw new Error(`the store's stasisApp is not ${APP}`);
  const candidates = loaded.store.agents.filter((a) => a.enabled && a.dids.length > 0);
  if (candidates.length < need) throw new Error(`only ${candidates.length} enabled agents with a DID; ${need} needed`);
  // Spread over the store.
  const stride = Math.floor(candidates.length / need);
  const agents = Array.from({ length: need }, (_, i) => {
    const a = candidates[i * stride]!;
    return { id: a.id, username: a.username, dids: [...a.dids] };
  });
  return { total: loaded.store.agents.length, agents };
}

async function main(args: DidHarnessArgs): Promise<DidHarnessResult> {
  const warmAgents = Math.max(args.warmup, args.warmupBursts?.calls ?? 0);
  const need = warmAgents + args.calls;
  // The 10k store (~100 MB live) is loaded, picked from and dropped: the fake, in this process,
  // stands for Asterisk and must not pay garbage collections of a heap it would not have.
  const { total: storeAgents, agents } = await pickAgents(args.store, need);
  // Every 5th agent from the 3rd on (40% by default) paused.
  const share = args.pausedShare ?? 0.4;
  const isPaused = (i: number): boolean => (i % 5) < Math.round(share * 5);
  const paused = agents.filter((_, i) => isPaused(i));

  const fake = new FakeAri({
    docsDir: args.docsDir, username: USER, password: PASSWORD, app: APP,
    endpoints: agents.map((a) => ({ technology: 'PJSIP', resource: a.username, state: 'online' as const })),
  });
  const url = await fake.start();
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'switchboard-bench-did-'));
  let child: Child | undefined;
  try {
    const daemonArgs: DidDaemonArgs = {
      store: args.store, out: path.join(tmp, 'out'), data: path.join(tmp, 'data'), logFile: path.join(tmp, 'daemon.log'),
      ariUrl: url, ariUser: USER, ariPassword: PASSWORD, paused: paused.map((a) => a.id),
      available: agents.find((_, i) => !isPaused(i))!.id,
    };
    progress(`starting the daemon (10k store, ARI at the fake; ${paused.length} agents paused by hand)`);
    child = new Child('did-daemon.js', daemonArgs);
    const ready = await child.next('ready', 120_000);
    if (!fake.connected) throw new Error('the daemon did not open the ARI events socket');

    let callSeq = 0;
    const callerNumber = (): string => `+6140${String(1_000_000 + ++callSeq)}`;

    // Warm-up: one call at a time.
    const warm: number[] = [];
    const warmIds: string[] = [];
    for (let i = 0; i < args.warmup; i++) {
      const a = agents[i]!;
      const id = fake.newChannelId();
      fake.track(id);
      warmIds.push(id);
      const sent = fake.incomingCall(id, a.dids[0]!, callerNumber(), 'Bench Caller');
      await waitFor(() => fake.firstAction.has(id), 10_000, `warm-up call ${i}: no ARI action`);
      warm.push(fake.firstAction.get(id)!.at - sent);
      await sleep(20);
    }
    await hangUpAll(fake, warmIds, child);

    const phase = async (name: string, list: CallAgent[], offset: number, spacingMs: number): Promise<PhaseResult> => {
      child!.send({ type: 'sample-start' });
      const sampling = await child!.next('sampling');
      const ids: string[] = [];
      const sent: number[] = [];
      let setUps = 0;
      let lastSetUp = 0;
      fake.onRequest = (op, at) => {
        if (op === 'channels.originate' || op === 'channels.originateWithId' || op === 'channels.play' || op === 'channels.playWithId') {
          setUps++;
          lastSetUp = at;
        }
      };
      progress(`${name}: ${list.length} calls${spacingMs ? `, one every ${spacingMs} ms` : ', all at once'}`);
      // Serialised beforehand, so that the send loop holds this process (and the fake's
      // timestamps of the first requests) as briefly as possible.
      const events = list.map((a) => {
        const id = fake.newChannelId();
        fake.track(id);
        ids.push(id);
        return fake.prepareCall(id, a.dids[0]!, callerNumber(), 'Bench Caller');
      });
      collectFakeGarbage();
      const cpu0 = process.cpuUsage();
      const conns0 = fake.connections;
      const t0 = monoMs();
      if (!spacingMs) {
        // All at once: the events leave in one write, framed beforehand; each is stamped with the write's start.
        const at = fake.sendAll(events);
        for (let i = 0; i < events.length; i++) sent.push(at);
      } else {
        for (let i = 0; i < events.length; i++) {
          sent.push(fake.send(events[i]!));
          await sleep(spacingMs);
        }
      }
      const sendMs = monoMs() - t0;
      await waitFor(() => ids.every((id) => fake.firstAction.has(id)) && setUps >= list.length, 120_000,
        () => `${name}: ${ids.filter((id) => fake.firstAction.has(id)).length}/${ids.length} calls had an ARI action, ${setUps} set up; failures: ${fake.failures.slice(0, 3).join('; ')}`);
      fake.onRequest = undefined;
      const cpu = process.cpuUsage(cpu0);
      child!.send({ type: 'sample-stop' });
      const sampled = await child!.next('sampled');
      const latency = ids.map((id, i) => fake.firstAction.get(id)!.at - sent[i]!);
      const firstOps: Record<string, number> = {};
      for (const id of ids) {
        const op = fake.firstAction.get(id)!.op;
        firstOps[op] = (firstOps[op] ?? 0) + 1;
      }
      const pausedAt = (i: number): boolean => isPaused(offset + i);
      const wrong = ids.findIndex((id, i) => fake.firstAction.get(id)!.op !== (pausedAt(i) ? 'channels.answer' : 'channels.ring'));
      if (wrong >= 0) throw new Error(`${name}: call ${wrong} (${pausedAt(wrong) ? 'paused' : 'available'} agent) began with ${fake.firstAction.get(ids[wrong]!)!.op}`);
      const result: PhaseResult = {
        calls: list.length, latency,
        latencyAvailable: latency.filter((_, i) => !pausedAt(i)),
        latencyPaused: latency.filter((_, i) => pausedAt(i)),
        firstOps, allSetUpMs: lastSetUp - sent[0]!, sendMs, fakeCpuMs: (cpu.user + cpu.system) / 1000, connections: fake.connections - conns0,
        peakRssMB: sampled['peakRssMB'] as number, rssBeforeMB: sampling['rssMB'] as number,
        maxRssAfterMB: sampled['maxRssMB'] as number, heapUsedAfterMB: sampled['heapUsedMB'] as number,
      };
      const { median, max } = summarise(latency);
      progress(`${name}: first action p50 ${median.toFixed(1)} ms, max ${max.toFixed(1)} ms; all set up in ${result.allSetUpMs.toFixed(0)} ms`);
      await hangUpAll(fake, ids, child!);
      return result;
    };

    const warmBursts: { calls: number; p50: number; max: number }[] = [];
    for (let r = 0; r < (args.warmupBursts?.rounds ?? 0); r++) {
      const w = await phase(`warm-up burst ${r + 1}`, agents.slice(0, args.warmupBursts!.calls), 0, 0);
      const { median, max } = summarise(w.latency);
      warmBursts.push({ calls: w.calls, p50: median, max });
    }

    const callAgents = agents.slice(warmAgents);
    const burst = await phase('burst', callAgents, warmAgents, 0);
    const paced = args.pacedMs > 0 ? { ...(await phase('paced', callAgents, warmAgents, args.pacedMs)), pacedMs: args.pacedMs } : undefined;

    child.send({ type: 'stop' });
    const stopped = await child.next('stopped', 60_000);
    return {
      agents: storeAgents,
      warmup: { latency: warm, ...(warmBursts.length ? { bursts: warmBursts } : {}) },
      burst,
      ...(paced ? { paced } : {}),
      daemon: { startMs: ready['startMs'] as number, rssAtReadyMB: ready['rssMB'] as number, maxRssAtReadyMB: ready['maxRssMB'] as number, maxRssMB: stopped['maxRssMB'] as number },
      requests: Object.fromEntries([...fake.counts].sort()),
      viaWs: fake.viaWs,
      failures: fake.failures.slice(0, 20),
      harnessMaxRssMB: maxRssMB(),
    };
  } finally {
    if (child) {
      if (!child.stoppedCleanly) child.proc.kill();
      await child.exit();
    }
    await fake.stop();
    await fs.rm(tmp, { recursive: true, force: true });
  }
}

/** Every caller hangs up; waits until the daemon has handled it all and no channel is left. */
async function hangUpAll(fake: FakeAri, ids: string[], child: Child): Promise<void> {
  for (const id of ids) fake.hangupFromFarEnd(id);
  await waitFor(() => fake.channelCount === 0, 30_000, () => `${fake.channelCount} channels still up after the callers hung up`);
  child.send({ type: 'settled?' });
  const settled = await child.next('settled', 30_000);
  if ((settled['active'] as number) > 0) throw new Error(`${String(settled['active'])} calls still active after every caller hung up`);
}

async function waitFor(ok: () => boolean, timeoutMs: number, what: string | (() => string)): Promise<void> {
  const until = monoMs() + timeoutMs;
  while (!ok()) {
    if (monoMs() > until) throw new Error(typeof what === 'string' ? what : what());
    await sleep(2);
  }
}

const result = await main(JSON.parse(process.argv[2] ?? '{}') as DidHarnessArgs);
process.stdout.write(JSON.stringify(result) + '\n');
process.exit(0);
