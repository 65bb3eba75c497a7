/**
 * DID call control over ARI: a call to an agent's Direct In Dial number rings the agent and, when
 * the agent is paused, logged out, busy, does not answer or cannot be reached, takes a voicemail
 * and emails the recording to the agent (product docs 000 §3; call records as in 003).
 *
 * The dialplan (templates/extensions/did.hbs) sends each DID to `Stasis(<app>,<DID>)`. Here:
 *
 *   StasisStart(caller, [DID]) ─ unknown DID ──> answer, ss-noservice, hang up (logged; no record)
 *     │ presence paused / logged out / busy, agent disabled ──> voicemail ("Diverted Call")
 *     └ available ──> ring the caller, originate to the agent (app args `dialed,<interaction id>`)
 *          │ agent answers (its StasisStart) ──> answer caller, mixing bridge ("Direct Agent Call")
 *          │     └ either side hangs up ──> hang up the other, destroy the bridge, duration recorded
 *          │ busy (cause 17/21) / no answer (our timer, cause 18/19) / failed (any other cause,
 *          │   originate refused) ──> voicemail
 *          └ caller hangs up ──> cancel the agent leg, outcome "abandoned"
 *   voicemail: answer, greeting (stored recording `greeting-<agentId>`, else vm-theperson +
 *     extension digits + vm-isunavail) + vm-intro, record with beep (`switchboard-<id>`, wav, '#'
 *     ends) ─ RecordingFinished (also after the caller hung up) ──> shorter than the minimum:
 *     dropped, "no message"; else fetched, kept as <recordingsDir>/yyyymmdd_hhmm_<id>.wav, emailed
 *     through the durable outbox ("queued"; the wiring sets "sent" on delivery), or "no email".
 *     A message that cannot be kept at once (Asterisk, the disk, the call records) is retried with
 *     backoff; Asterisk's copy is deleted only once ours is kept, so the next start takes what this
 *     process could not.
 *
 * ARI lost (a request fails with the connection, or a timer fires while it is down): the call waits
 * where it is and is picked up from Asterisk's state when ARI is back (see onConnected).
 *
 * Fail safe: any other error while the caller is in our hands is logged and the caller continues in the
 * dialplan at the DID's `vm` priority (Asterisk's VoiceMail for the agent's box), or, if even that
 * fails, is hung up cleanly: never left in silence.
 *
 * One in-memory state machine per call. Events are routed to calls by channel id, playback id and
 * recording name through one listener per event type (installed by start(), removed by stop()), and
 * each call handles its events one at a time, in order (a per-call promise queue). A finished call
 * leaves nothing behind: maps, timers and queue are dropped.
 *
 * After the events socket comes back ('connected' after a 'disconnected'), `resync` compares every
 * call with `GET /channels` and resumes it (see `resync` for exactly what is resumed). Channels
 * left in our app by an earlier process (no state here): a caller still bridged with its agent
 * (bridge `<interaction id>-bridge`) is adopted and the two go on talking; one side left alone in
 * such a bridge is hung up; other callers are handed to the dialplan's voicemail and other agent
 * legs hung up; empty bridges of ours are destroyed (Asterisk keeps them otherwise).
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { AriPort, BridgeJson, ChannelJson, LiveRecordingJson, PlaybackJson } from '../asterisk/ari/types.js';
import { AriRequestError, isNotFound } from '../asterisk/ari/errors.js';
import type { CallRecord, CallRecords, CallType } from '../calls/records.js';
import { nextInteractionId } from '../calls/interaction-id.js';
import { PeerDisconnectedError, PeerRequestError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { MailJobInvalidError } from '../mail/errors.js';
import type { MailJob, MailJobInput } from '../mail/outbox.js';
import { writeFileAtomic } from '../fsutil.js';
import { buildVoicemailEmail, localDateTime, recordingFileName, type EmailTemplates } from '../mail/voicemail-email.js';
import type { Agent, Store } from '../model/types.js';
import { dialTarget } from '../render/plan.js';

/** App args of the channels we originate: `dialed,<interaction id>`. */
export const DIALED_MARKER = 'dialed';

/**
 * The priority label of the DID's voicemail step in templates/extensions/did.hbs (`n(vm),VoiceMail`).
 * ARI's continue takes a label, so an operator's template may move the step without breaking the
 * fallback; a test reads the template to keep the two in step.
 */
export const DID_VM_LABEL = 'vm';

/** Hangup causes (Q.850) of an agent leg that ended before answer → why the call was diverted. */
export function divertReasonForCause(cause: number | undefined): 'busy' | 'no answer' | 'failed' {
  if (cause === 17 || cause === 21) return 'busy';
  if (cause === 16 || cause === 18 || cause === 19 || cause === 31) return 'no answer';
  return 'failed';
}

export type PresenceState = 'available' | 'paused' | 'logged out' | 'busy';

/** What the workflow needs from the presence service (src/presence). */
export interface PresenceLookup {
  get(agentIdOrUsername: string): { state: PresenceState | string; reason?: string } | undefined | Promise<{ state: PresenceState | string; reason?: string } | undefined>;
}

export interface DidWorkflowSettings {
  voicemail: {
    /** Longest message (ARI record maxDurationSeconds). */
    maxDurationSeconds: number;
    /** Silence that ends a message (ARI record maxSilenceSeconds). */
    maxSilenceSeconds: number;
    /** Shorter messages are dropped ("no message"). */
    minDurationSeconds: number;
  };
  /** Kept recordings go here (<data dir>/recordings). */
  recordingsDir: string;
  /** Ring time for every agent (settings [voicemail] ring_timeout_seconds); unset: the agent's voice.ringTimeoutSeconds (else 20). */
  ringTimeoutSeconds?: number;
  /** Our own ring timer fires this long after the agent's ring timeout (Asterisk should end the leg first). Default 2000. */
  ringGraceMs?: number;
  /** A prompt that never reports PlaybackFinished is given up after this long. Default 60000. */
  promptTimeoutMs?: number;
  /** A recording whose RecordingFinished never arrives is fetched this long after maxDurationSeconds. Default 15000. */
  recordingGraceMs?: number;
  /** Stasis app name; default: the store's dialplan.stasisApp. */
  app?: string;
  /**
   * A channel found in our app on connect is only treated as left behind by an earlier run if no
   * StasisStart for it arrives within this time (the list and the events race). Default 2000.
   */
  orphanGraceMs?: number;
  /**
   * A message that could not be kept at once (Asterisk's file not fetched, the disk, the call
   * records) is retried: first after `initialMs`, doubling up to `maxMs`, `attempts` times in all
   * (defaults 1000, 60000, 10: about six minutes). Asterisk's copy is only deleted once ours is kept,
   * so a message still not kept then is taken again at the next start (sweepStaleRecords).
   */
  saveRetry?: { initialMs?: number; maxMs?: number; attempts?: number };
  /** First wait before a failed check of Asterisk's channels (after a reconnect, or for one call) is tried again; doubles up to 10 s. Default 500. */
  resyncRetryMs?: number;
}

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface DidWorkflowDeps {
  ari: AriPort;
  presence: PresenceLookup;
  /** The current store (the DID index is rebuilt whenever this returns a different object). */
  store: () => Store | undefined;
  records: CallRecords;
  outbox: { enqueue(input: MailJobInput): Promise<MailJob> };
  templates: EmailTemplates;
  settings: DidWorkflowSettings;
  logger: Logger;
  clock?: () => Date;
  timers?: Timers;
  ids?: { interactionId(): string };
}

type CallState =
  | 'new' // looking the agent up, checking presence
  | 'unknown' // unknown DID: playing ss-noservice
  | 'ringing' // agent leg originated
  | 'connecting' // agent answered, bridging
  | 'bridged'
  | 'greeting' // voicemail greeting playing
  | 'recording'
  | 'saving' // fetching, keeping and emailing the message
  | 'goodbye' // closing prompt, then hang up
  | 'done';

interface Call {
  id: string;
  did: string;
  callerNumber: string;
  callerName: string;
  inboundId: string;
  /** The dialplan context the caller's channel ran Stasis() in (fallback for the fail safe). */
  dialplanContext?: string;
  log: Logger;
  startedAt: Date;
  state: CallState;
  agent?: Agent;
  /** A call record exists for this call. */
  recorded: boolean;
  callType: CallType;
  divertReason?: string;
  outboundId?: string;
  bridgeId?: string;
  answeredAt?: Date;
  /** When the agent leg was originated, and its ring time. */
  ringStartedAt?: Date;
  ringTimeoutSeconds?: number;
  recordingName?: string;
  recordingStartedAt?: Date;
  /** Set as soon as the event arrives (before the queue reaches it). */
  callerGone: boolean;
  /**
   * Asterisk announced the caller's hang-up (ChannelHangupRequest): set on arrival. Asterisk sends
   * it before it ends the caller's playback or recording (PlaybackFinished "failed",
   * RecordingFinished) and before StasisEnd, so nothing new is started for a caller who is leaving.
   */
  hangupRequested: boolean;
  /** The call's timers (made with the first one). */
  timers: Set<unknown> | undefined;
  queue: Promise<void>;
  /**
   * The step ARI's connection was lost in (or the timer that fired while it was down): resync()
   * picks the call up from what Asterisk reports once ARI is back. Undefined otherwise.
   */
  interrupted?: string;
  /** Checks of this call's channels in a row that failed (backoff of scheduleResync). */
  resyncAttempts?: number;
  /** The playback Asterisk accepted last (its id): resync asks whether it is still playing. */
  playing?: string;
  /** endBridged has begun: hanging up both sides. */
  ending?: boolean;
}

/**
 * A message being kept: what saveMessage needs, and how far it got (a retry goes on from there).
 * Lives apart from its call: a caller who has heard "message saved" and hung up does not wait for it.
 */
interface SaveJob {
  id: string;
  agent: Agent;
  name: string;
  did: string;
  callerNumber: string;
  /** When the message began (the file name and the email use it). */
  startedAt: Date;
  recorded: boolean;
  log: Logger;
  durationSeconds?: number;
  bytes?: Buffer;
  file?: string;
  /** The call record says "voicemail", recording available. */
  kept?: boolean;
  /** The email is in the outbox (or will not be sent: no address, or it cannot be built). */
  mailDone?: boolean;
  attempts: number;
  timer?: unknown;
  running?: Promise<void>;
}

/** What `activeCalls()` shows (tests, `status`). */
export interface CallSnapshot {
  interactionId: string;
  did: string;
  state: CallState;
  agentId?: string;
  inboundId: string;
  outboundId?: string;
  bridgeId?: string;
  recordingName?: string;
}

const realTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export class DidWorkflow {
  private readonly log: Logger;
  private readonly now: () => Date;
  private readonly timers: Timers;
  private readonly newId: () => string;
  private readonly calls = new Set<Call>();
  private readonly byChannel = new Map<string, Call>();
  private readonly byPlayback = new Map<string, Call>();
  private readonly byRecording = new Map<string, Call>();
  private readonly indexes = new WeakMap<Store, Map<string, Agent>>();
  private readonly listeners: [string, (...args: unknown[]) => void][] = [];
  /**
   * Starts waiting for a later turn of the event loop (laterTurn), in groups of LATER_PER_TURN
   * sharing one promise (a promise, an executor and an entry per call were a fifth of what a
   * StasisStart allocated); `at` is when the group's first call arrived.
   */
  private readonly later: { promise: Promise<void>; resolve: () => void; at: number; size: number }[] = [];
  private laterScheduled = false;
  /** When the last new call arrived (performance.now()). */
  private lastArrivalAt = 0;
  private running = false;
  /** When start() ran: call records still "in progress" from before are an earlier run's. */
  private startedAt = new Date(0);
  private swept = false;
  private wasDisconnected = false;
  /** Between 'disconnected' and 'connected': requests fail at once, timers of calls wait for the resync. */
  private ariDown = false;
  /** Every call is to be checked against Asterisk's channels (set by a disconnect; cleared once listed). */
  private resyncPending = false;
  /** Counts 'connected' events: a check begun for an earlier connection gives up. */
  private connection = 0;
  private adopting: Promise<void> | undefined;
  /** Messages not kept yet, by interaction id (saveMessage retried with backoff). */
  private readonly pendingSaves = new Map<string, SaveJob>();

  constructor(private readonly deps: DidWorkflowDeps) {
    this.log = deps.logger.child({ component: 'did-workflow' });
    this.now = deps.clock ?? (() => new Date());
    this.timers = deps.timers ?? realTimers;
    this.newId = deps.ids ? () => deps.ids!.interactionId() : nextInteractionId;
  }

  /** Starts handling events from the ARI port. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.startedAt = this.now();
    const on = <E>(name: string, fn: (e: E) => void): void => {
      const listener = fn as unknown as (...args: unknown[]) => void;
      this.deps.ari.on(name, listener);
      this.listeners.push([name, listener]);
    };
    on('StasisStart', (e: { args?: string[]; channel: ChannelJson }) => this.onStasisStart(e));
    on('StasisEnd', (e: { channel: ChannelJson }) => this.onChannelGone(e.channel.id, undefined, 'StasisEnd'));
    on('ChannelHangupRequest', (e: { channel: ChannelJson }) => this.onHangupRequest(e.channel.id));
    on('ChannelDestroyed', (e: { channel: ChannelJson; cause?: number }) => this.onChannelGone(e.channel.id, e.cause, 'ChannelDestroyed'));
    on('PlaybackFinished', (e: { playback: PlaybackJson }) => this.onPlaybackFinished(e.playback));
    on('RecordingFinished', (e: { recording: LiveRecordingJson }) => this.onRecordingEnded(e.recording, true));
    on('RecordingFailed', (e: { recording: LiveRecordingJson }) => this.onRecordingEnded(e.recording, false));
    on('disconnected', () => {
      this.wasDisconnected = true;
      this.ariDown = true;
      this.log.warn({ calls: this.calls.size }, 'ARI events socket lost: calls in progress are resynchronised on reconnect');
    });
    on('connected', () => {
      if (this.wasDisconnected) this.resyncPending = true;
      this.wasDisconnected = false;
      this.ariDown = false;
      const connection = ++this.connection;
      this.adopting = this.onConnected(connection).catch((err: unknown) => {
        this.log.error({ err: errorMessage(err) }, 'after (re)connecting: could not check the channels in Asterisk');
      });
    });
  }

  /**
   * Stops handling events: listeners removed, timers cleared, then waits (at most `timeoutMs`) for
   * the work already under way (e.g. a message being saved and queued). Calls still in Asterisk
   * are adopted by the next start (see `adoptOrphans`).
   */
  async stop(timeoutMs = 5000): Promise<void> {
    this.running = false;
    for (const [name, fn] of this.listeners) this.deps.ari.off(name, fn);
    this.listeners.length = 0;
    for (const call of this.calls) this.clearTimers(call);
    let timer: unknown;
    await Promise.race([
      this.settled(),
      new Promise<void>((resolve) => { timer = this.timers.setTimeout(resolve, timeoutMs); }),
    ]);
    this.timers.clearTimeout(timer);
    for (const call of this.calls) this.clearTimers(call);
    for (const job of this.pendingSaves.values()) {
      if (job.timer !== undefined) this.timers.clearTimeout(job.timer);
      job.timer = undefined;
      job.log.warn({ recording: job.name, attempts: job.attempts },
        'stopping with a message not kept yet: Asterisk keeps the recording and the next start takes it');
    }
    this.pendingSaves.clear();
  }

  activeCalls(): CallSnapshot[] {
    return [...this.calls].map((c) => ({
      interactionId: c.id, did: c.did, state: c.state, inboundId: c.inboundId,
      ...(c.agent ? { agentId: c.agent.id } : {}),
      ...(c.outboundId ? { outboundId: c.outboundId } : {}),
      ...(c.bridgeId ? { bridgeId: c.bridgeId } : {}),
      ...(c.recordingName ? { recordingName: c.recordingName } : {}),
    }));
  }

  /** Resolves once every event received so far has been handled (tests). */
  async settled(): Promise<void> {
    const snapshot = (): Promise<void>[] => [
      ...[...this.calls].map((c) => c.queue),
      ...(this.adopting ? [this.adopting] : []),
      ...[...this.pendingSaves.values()].flatMap((j) => (j.running ? [j.running] : [])),
    ];
    for (let round = 0; round < 1000; round++) {
      const pending = snapshot();
      await Promise.all(pending);
      const now = snapshot();
      if (now.length === pending.length && now.every((q, i) => q === pending[i])) return;
    }
  }

  // -------------------------------------------------------------------------------------------
  // Event routing

  private onStasisStart(e: { args?: string[]; channel: ChannelJson }): void {
    const channel = e.channel;
    const args = e.args ?? [];
    const known = this.byChannel.get(channel.id);
    if (args[0] === DIALED_MARKER || (known && known.outboundId === channel.id)) {
      const call = known ?? [...this.calls].find((c) => c.id === args[1]);
      if (!call || call.outboundId !== channel.id) {
        this.log.warn({ channelId: channel.id, args }, 'an agent leg we no longer track entered Stasis: hanging it up');
        this.quietly(() => this.deps.ari.hangup(channel.id), this.log, 'hang up the stray agent leg').catch(() => undefined);
        return;
      }
      this.enqueue(call, 'agent answered', () => this.agentAnswered(call, channel.id));
      return;
    }
    if (known) return; // a repeat (should not happen)
    const did = args[0] ?? channel.dialplan?.exten ?? '';
    const id = this.newId();
    const call = this.track({
      id, did,
      callerNumber: channel.caller?.number ?? '',
      callerName: channel.caller?.name ?? '',
      inboundId: channel.id,
      // The call's own child logger is made in begin(), once the agent is known (one child, not two).
      log: this.log,
      startedAt: this.now(),
      state: 'new',
      recorded: false,
      callType: 'Direct Agent Call',
    }, channel.id);
    if (channel.dialplan?.context) call.dialplanContext = channel.dialplan.context;
    // The first ARI action (ring, or answer before voicemail) leaves now, in this event's handler;
    // the rest of the start runs in a later turn of the event loop, a few calls per turn
    // (laterTurn), so that StasisStart events still arriving in a burst get their first action
    // before the bookkeeping of the calls before them.
    const fast = this.firstActionNow(call);
    this.lastArrivalAt = performance.now();
    // The call is new, nothing is queued on it yet: a fast start's queue begins after laterTurn().
    if (fast) this.enqueue(call, 'start', () => this.begin(call, fast), this.laterTurn());
    else this.enqueue(call, 'start', () => this.begin(call));
  }

  private onChannelGone(channelId: string, cause: number | undefined, why: string): void {
    const call = this.byChannel.get(channelId);
    if (!call) return;
    if (channelId === call.inboundId) {
      if (call.callerGone) return;
      call.callerGone = true;
      this.enqueue(call, 'caller hung up', () => this.callerGone(call));
    } else if (channelId === call.outboundId) {
      this.enqueue(call, `agent leg ${why}`, () => this.agentLegGone(call, channelId, cause));
    }
  }

  private onHangupRequest(channelId: string): void {
    const call = this.byChannel.get(channelId);
    if (call && channelId === call.inboundId) call.hangupRequested = true;
  }

  private onPlaybackFinished(playback: PlaybackJson): void {
    const call = this.byPlayback.get(playback.id);
    if (!call) return;
    this.byPlayback.delete(playback.id);
    // Asterisk ends a prompt with state "failed" when the caller hangs up during it, and when a
    // sound file is missing (it then skips the rest of the list): only the latter is worth a warning.
    if (playback.state === 'failed' && !call.hangupRequested && !call.callerGone) {
      call.log.warn({ playbackId: playback.id, media: playback.media_uri },
        'a prompt could not be played (is the sound file installed in Asterisk\'s sounds directory?): going on');
    }
    this.enqueue(call, 'prompt finished', () => this.promptFinished(call, playback.id));
  }

  private onRecordingEnded(recording: LiveRecordingJson, finished: boolean): void {
    const call = this.byRecording.get(recording.name);
    if (!call) return;
    this.enqueue(call, finished ? 'recording finished' : 'recording failed', () =>
      finished ? this.recordingFinished(call, recording.duration) : this.recordingFailed(call, recording));
  }

  /**
   * Resolves in a later turn of the event loop, once no new call has arrived for
   * BURST_QUIET_MS (while a burst is still coming in, its StasisStart events go first), or at the
   * latest BURST_MAX_WAIT_MS after the oldest waiter; then at most LATER_PER_TURN waiters per turn,
   * so that the event loop reads the sockets between them.
   */
  private laterTurn(): Promise<void> {
    const last = this.later[this.later.length - 1];
    if (last && last.size < LATER_PER_TURN) {
      last.size++;
      return last.promise;
    }
    let resolve!: () => void;
    const promise = new Promise<void>((r) => { resolve = r; });
    this.later.push({ promise, resolve, at: performance.now(), size: 1 });
    if (!this.laterScheduled) {
      this.laterScheduled = true;
      setImmediate(this.runLater);
    }
    return promise;
  }

  private readonly runLater = (): void => {
    const now = performance.now();
    // Under a steady stream every waiter older than the longest wait goes, LATER_PER_TURN a turn.
    if (now - this.lastArrivalAt >= BURST_QUIET_MS || now - this.later[0]!.at >= BURST_MAX_WAIT_MS) {
      this.later.shift()!.resolve();
    }
    if (this.later.length) setImmediate(this.runLater);
    else this.laterScheduled = false;
  };

  /**
   * Runs `fn` on the call's queue once `after` (by default what is queued already) settles,
   * unless the call is done by then; an error goes to the fail safe. Two promises per step (a
   * burst queues one step per call).
   */
  private enqueue(call: Call, what: string, fn: () => Promise<void>, after: Promise<unknown> = call.queue): void {
    call.queue = after
      .then(() => (call.state === 'done' ? undefined : fn()))
      .catch((err: unknown) => (isConnectionLoss(err) ? this.interrupt(call, what, err) : this.failSafe(call, what, err)));
  }

  /**
   * A timer of the call; one that fires while ARI is down does not run (its requests would fail):
   * the call is resynchronised when ARI is back, and resync() decides from Asterisk's state.
   */
  private timer(call: Call, what: string, ms: number, fn: () => Promise<void>): unknown {
    const handle = this.timers.setTimeout(() => {
      call.timers?.delete(handle);
      if (this.ariDown) {
        if (call.interrupted === undefined) call.log.warn({ step: what }, 'a timer of the call fired while ARI is down: handled when ARI is back');
        call.interrupted ??= what;
        return;
      }
      this.enqueue(call, what, fn);
    }, ms);
    (call.timers ??= new Set()).add(handle);
    return handle;
  }

  private clearTimers(call: Call): void {
    if (!call.timers) return;
    for (const t of call.timers) this.timers.clearTimeout(t);
    call.timers.clear();
  }

  // -------------------------------------------------------------------------------------------
  // The call

  /**
   * Decides from memory (store, presence) and sends the call's first action at once. Undefined
   * when that cannot be done synchronously (no store yet, unknown DID, an asynchronous presence
   * lookup): begin() then does everything itself.
   */
  private firstActionNow(call: Call): FirstAction | undefined {
    const store = this.deps.store();
    const agent = store ? this.agentFor(store, call.did) : undefined;
    if (!store || !agent) return undefined;
    const d = this.decide(agent);
    if (d instanceof Promise) return undefined;
    const sent = d.reason ? this.deps.ari.answer(call.inboundId) : this.deps.ari.ring(call.inboundId);
    // begin() awaits it a turn later; a rejection before then is not an unhandled one.
    sent.catch(() => undefined);
    // Spelled out: an object spread here cost as much as the decision itself.
    return { reason: d.reason, presence: d.presence, presenceError: d.presenceError, store, agent, sent };
  }

  /**
   * Ring the agent or divert, and why: login disabled or not available → the divert reason; a
   * presence lookup that fails → ring (no answer or a failure still ends in voicemail). Synchronous
   * unless the presence lookup is asynchronous.
   */
  private decide(agent: Agent): Decision | Promise<Decision> {
    if (!agent.enabled) return { reason: 'logged out', presence: undefined, presenceError: undefined };
    let seen: ReturnType<PresenceLookup['get']>;
    try {
      seen = this.deps.presence.get(agent.id);
    } catch (err) {
      return presenceFailed(err);
    }
    const thenable = seen !== undefined && typeof (seen as PromiseLike<unknown>).then === 'function';
    return thenable ? Promise.resolve(seen).then(decided, presenceFailed) : decided(seen as PresenceSeen | undefined);
  }

  private async begin(call: Call, fast?: FirstAction): Promise<void> {
    const store = fast?.store ?? this.deps.store();
    const agent = fast?.agent ?? (store ? this.agentFor(store, call.did) : undefined);
    // A plain assignment: redefining `log` as a lazy accessor (as before) turned every call object
    // into a dictionary-mode object for V8, and every call logs at least once anyway.
    call.log = this.log.child({ callId: call.id, did: call.did, channelId: call.inboundId, ...(agent ? { agentId: agent.id } : {}) });
    // Without a store we cannot tell: the fail safe hands the caller to the dialplan's voicemail.
    if (!store) throw new Error('no agent store is loaded yet');
    if (!agent) {
      call.state = 'unknown';
      call.log.warn({ callerNumber: call.callerNumber }, 'no agent has this DID: playing "not in service"');
      await this.deps.ari.answer(call.inboundId);
      await this.play(call, 'noservice', ['sound:ss-noservice']);
      return;
    }
    call.agent = agent;

    // A fast start decided and sent its first action in the StasisStart handler (firstActionNow).
    const { reason, presence, presenceError } = fast ?? await this.decide(agent);
    if (reason) {
      call.callType = 'Diverted Call';
      call.divertReason = reason;
    }
    // Queued, written with the other calls of this turn in one transaction (CallRecords.insertSoon).
    if (!call.recorded) {
      this.deps.records.insertSoon(this.initialRecord(call, agent));
      call.recorded = true;
    }
    if (call.callerGone) return;
    const first = reason ? this.divert(call, reason, true, fast?.sent) : this.ringAgent(call, agent, store, fast?.sent);
    // Logged once the first action has gone (a fast start runs after the whole burst's).
    if (presenceError !== undefined) call.log.warn({ err: errorMessage(presenceError) }, 'presence unknown (lookup failed): ringing the agent');
    call.log.info({ callerNumber: call.callerNumber, presence: presence?.state ?? (agent.enabled ? 'logged out' : 'login disabled'), presenceReason: presence?.reason }, 'DID call arrived');
    await first;
  }

  /** `sent`: the ring request firstActionNow already sent. */
  private async ringAgent(call: Call, agent: Agent, store: Store, sent?: Promise<void>): Promise<void> {
    const outboundId = `${call.id}-agent`;
    const endpoint = dialTarget(agent, store.settings.backend);
    const timeoutSeconds = this.deps.settings.ringTimeoutSeconds ?? (agent.voice?.ringTimeoutSeconds || 20);
    call.state = 'ringing';
    call.outboundId = outboundId;
    call.ringStartedAt = this.now();
    call.ringTimeoutSeconds = timeoutSeconds;
    this.byChannel.set(outboundId, call);
    await (sent ?? this.deps.ari.ring(call.inboundId));
    this.timer(call, 'ring timeout', timeoutSeconds * 1000 + (this.deps.settings.ringGraceMs ?? 2000), () => this.ringTimedOut(call));
    call.log.info({ endpoint, timeoutSeconds, outboundId }, 'ringing the agent');
    try {
      await this.deps.ari.originate({
        endpoint,
        app: this.app(store),
        appArgs: `${DIALED_MARKER},${call.id}`,
        callerId: callerIdOf(call.callerName, call.callerNumber),
        timeoutSeconds,
        channelId: outboundId,
      });
    } catch (err) {
      // A lost connection: resync() sees whether Asterisk made the leg.
      if (isConnectionLoss(err) || call.callerGone || call.state !== 'ringing') throw err;
      call.log.warn({ err: errorMessage(err), endpoint }, 'originate to the agent failed: voicemail');
      this.dropOutbound(call);
      // A timed-out request may still have created the leg.
      await this.quietly(() => this.deps.ari.hangup(outboundId), call.log, 'hang up the agent leg');
      await this.divert(call, 'failed');
    }
  }

  private async ringTimedOut(call: Call): Promise<void> {
    if (call.state !== 'ringing' || !call.outboundId) return;
    const outboundId = call.outboundId;
    call.log.info('the agent did not answer in time: voicemail');
    // Hung up before it is forgotten: a request lost with ARI's connection leaves the leg tracked.
    await this.quietly(() => this.deps.ari.hangup(outboundId, 'no_answer'), call.log, 'hang up the agent leg');
    this.dropOutbound(call);
    await this.divert(call, 'no answer');
  }

  private async agentAnswered(call: Call, outboundId: string): Promise<void> {
    if (call.outboundId === outboundId && (call.state === 'connecting' || call.state === 'bridged')) {
      // Bridged already by resync() (it saw the leg in Stasis before this StasisStart was read).
      call.log.debug({ outboundId }, 'agent answer seen twice: already bridged');
      return;
    }
    if (call.state !== 'ringing' || call.outboundId !== outboundId || call.callerGone) {
      call.log.info({ outboundId }, 'the agent answered too late: hanging the agent leg up');
      await this.quietly(() => this.deps.ari.hangup(outboundId), call.log, 'hang up the late agent leg');
      return;
    }
    this.clearTimers(call);
    call.state = 'connecting';
    call.answeredAt = this.now();
    await this.bridgeCall(call, outboundId, false);
  }

  /** Answers the caller and bridges the two; `again`: resuming after ARI was lost (parts may be done). */
  private async bridgeCall(call: Call, outboundId: string, again: boolean): Promise<void> {
    await this.deps.ari.answer(call.inboundId);
    const bridgeId = `${call.id}-bridge`;
    const existing = again ? (await this.deps.ari.listBridges()).find((b) => b.id === bridgeId) : undefined;
    const bridge = existing ?? await this.deps.ari.createBridge({ type: 'mixing', bridgeId });
    call.bridgeId = bridge.id;
    const missing = [call.inboundId, outboundId].filter((id) => !existing?.channels.includes(id));
    if (missing.length > 0) await this.deps.ari.addChannel(bridge.id, missing);
    call.state = 'bridged';
    this.update(call, { outcome: 'answered', callType: 'Direct Agent Call' });
    call.log.info({ bridgeId: bridge.id }, 'agent answered: caller and agent bridged');
  }

  private async agentLegGone(call: Call, outboundId: string, cause: number | undefined): Promise<void> {
    if (call.outboundId !== outboundId) return;
    if (call.state === 'ringing') {
      let reason = divertReasonForCause(cause);
      // Asterisk ends an unanswered originate at its timeout with a cause that varies by driver.
      const rung = call.ringStartedAt ? this.now().getTime() - call.ringStartedAt.getTime() : 0;
      if (reason === 'failed' && call.ringTimeoutSeconds !== undefined && rung >= call.ringTimeoutSeconds * 1000 - 500) reason = 'no answer';
      call.log.info({ cause, reason }, 'the agent leg ended before answer: voicemail');
      this.dropOutbound(call);
      await this.divert(call, reason);
    } else if (call.state === 'connecting' || call.state === 'bridged') {
      call.log.info({ cause }, 'the agent hung up');
      this.dropOutbound(call);
      await this.endBridged(call);
    }
  }

  private async callerGone(call: Call): Promise<void> {
    switch (call.state) {
      case 'new':
      case 'unknown':
        await this.finish(call, call.recorded ? { outcome: 'abandoned', durationSeconds: this.secondsSince(call.startedAt) } : undefined, 'caller hung up');
        return;
      case 'ringing': {
        const outboundId = call.outboundId;
        if (outboundId) await this.quietly(() => this.deps.ari.hangup(outboundId), call.log, 'cancel the agent leg');
        this.dropOutbound(call);
        await this.finish(call, { outcome: 'abandoned', durationSeconds: this.secondsSince(call.startedAt) }, 'caller hung up while the agent was ringing');
        return;
      }
      case 'connecting':
      case 'bridged':
        await this.endBridged(call);
        return;
      case 'greeting':
        await this.finish(call, { outcome: 'no message', recordingStatus: 'none' }, 'caller hung up during the greeting');
        return;
      case 'recording':
        // Asterisk finishes (and stores) the recording when the caller hangs up: RecordingFinished
        // follows. If it never does, the overdue timer fetches what Asterisk stored.
        this.timer(call, 'recording finished (caller gone)', this.deps.settings.recordingGraceMs ?? 15_000, () => this.recordingOverdue(call));
        return;
      case 'goodbye':
        await this.finish(call, undefined, 'caller hung up');
        return;
      default:
        return; // saving: finishes on its own
    }
  }

  /** Either side of a bridged call hung up: the other goes too, the bridge is destroyed. */
  private async endBridged(call: Call): Promise<void> {
    // Everything is asked of Asterisk before anything is forgotten: if ARI's connection is lost on
    // the way, resync() runs this again (`ending`); what is already gone answers 404, ignored.
    call.ending = true;
    const outboundId = call.outboundId;
    if (outboundId) await this.quietly(() => this.deps.ari.hangup(outboundId), call.log, 'hang up the agent leg');
    if (!call.callerGone) await this.quietly(() => this.deps.ari.hangup(call.inboundId), call.log, 'hang up the caller');
    if (call.bridgeId) {
      const bridgeId = call.bridgeId;
      await this.quietly(() => this.deps.ari.destroyBridge(bridgeId), call.log, 'destroy the bridge');
    }
    this.dropOutbound(call);
    const answered = call.answeredAt !== undefined;
    await this.finish(call, {
      outcome: answered ? 'answered' : 'abandoned',
      durationSeconds: this.secondsSince(call.answeredAt ?? call.startedAt),
    }, 'call ended');
  }

  // -------------------------------------------------------------------------------------------
  // Voicemail

  /**
   * `recordIsDiverted`: the call record was created as a Diverted Call with this reason already;
   * `sent`: the answer request firstActionNow already sent.
   */
  private async divert(call: Call, reason: string, recordIsDiverted = false, sent?: Promise<void>): Promise<void> {
    const agent = call.agent!;
    call.callType = 'Diverted Call';
    call.divertReason = reason;
    call.state = 'greeting';
    const answered = sent ?? this.deps.ari.answer(call.inboundId);
    if (!recordIsDiverted) this.update(call, { callType: 'Diverted Call', divertReason: reason });
    await answered;
    call.log.info({ reason }, 'diverting to voicemail');
    if (!agent.voicemail.enabled) {
      call.log.info('the agent has no voicemail: playing "nobody available"');
      call.state = 'goodbye';
      this.update(call, { outcome: 'no message', recordingStatus: 'none' });
      await this.play(call, 'goodbye', ['sound:vm-nobodyavail', 'sound:vm-goodbye']);
      return;
    }
    await this.playGreeting(call, agent);
  }

  private async playGreeting(call: Call, agent: Agent): Promise<void> {
    const greeting = await this.deps.ari.getStoredRecording(`greeting-${agent.id}`);
    const media = greeting
      ? [`recording:${greeting.name}`, 'sound:vm-intro']
      : ['sound:vm-theperson', `digits:${agent.extension}`, 'sound:vm-isunavail', 'sound:vm-intro'];
    await this.play(call, 'greeting', media);
  }

  private async promptFinished(call: Call, playbackId: string): Promise<void> {
    const kind = playbackId.slice(call.id.length + 1);
    if (kind === 'greeting' && call.state === 'greeting') {
      // The caller hung up during the greeting: StasisEnd follows and records "no message".
      if (call.hangupRequested || call.callerGone) return;
      await this.startRecording(call);
    }
    else if ((kind === 'goodbye' && call.state === 'goodbye') || (kind === 'noservice' && call.state === 'unknown')) {
      await this.quietly(() => this.deps.ari.hangup(call.inboundId), call.log, 'hang up the caller');
      await this.finish(call, undefined, 'caller hung up by us');
    }
  }

  private async startRecording(call: Call): Promise<void> {
    const { maxDurationSeconds, maxSilenceSeconds } = this.deps.settings.voicemail;
    const name = `switchboard-${call.id}`;
    this.clearTimers(call);
    this.dropPlaybacks(call);
    call.state = 'recording';
    call.recordingName = name;
    call.recordingStartedAt = this.now();
    this.byRecording.set(name, call);
    try {
      await this.deps.ari.record(call.inboundId, {
        name, format: 'wav', maxDurationSeconds, maxSilenceSeconds, beep: true, terminateOn: '#', ifExists: 'fail',
      });
    } catch (err) {
      if (isNotFound(err) && (call.hangupRequested || (await this.deps.ari.getChannel(call.inboundId).catch(() => null)) === undefined)) {
        // The caller hung up just before the recording could start.
        call.log.info('the caller hung up before the recording started');
        call.callerGone = true;
        await this.finish(call, { outcome: 'no message', recordingStatus: 'none' }, 'caller hung up during the greeting');
        return;
      }
      if (err instanceof AriRequestError && (err.status === 500 || /internal server error/i.test(err.peerMessage))) {
        // Asterisk 20/22 log "Unrecognized recording error: No such file or directory" when
        // <astspooldir>/recording is missing: ARI creates subdirectories, not the directory itself.
        call.log.error({ err: errorMessage(err) },
          'Asterisk could not start the recording: check that its recording directory (<astspooldir>/recording, e.g. /var/spool/asterisk/recording) exists and is writable by Asterisk');
      }
      throw err;
    }
    call.log.info({ recording: name }, 'recording the message');
    this.timer(call, 'recording overdue', maxDurationSeconds * 1000 + (this.deps.settings.recordingGraceMs ?? 15_000), () => this.recordingOverdue(call));
  }

  /**
   * The message is recorded: keep it (saveMessage). One that cannot be kept at once is retried in
   * the background (retrySaveLater) while the caller hears "message saved": Asterisk holds the
   * recording until our copy is kept, and a later start takes it if this process cannot.
   */
  private async recordingFinished(call: Call, durationSeconds: number | undefined, bytes?: Buffer): Promise<void> {
    if (call.state !== 'recording') return;
    this.clearTimers(call);
    call.state = 'saving';
    const name = call.recordingName!;
    this.byRecording.delete(name);
    const job: SaveJob = {
      id: call.id, agent: call.agent!, name, did: call.did, callerNumber: call.callerNumber,
      startedAt: call.recordingStartedAt ?? call.startedAt, recorded: call.recorded, log: call.log, attempts: 0,
      ...(durationSeconds !== undefined ? { durationSeconds } : {}),
      ...(bytes ? { bytes } : {}),
    };
    let outcome: 'kept' | 'dropped' | 'retrying';
    try {
      outcome = await this.saveMessage(job);
    } catch (err) {
      outcome = 'retrying';
      this.retrySaveLater(job, err);
    }
    if (call.callerGone || call.hangupRequested) {
      await this.finish(call, undefined, outcome === 'kept' ? 'message saved' : outcome === 'dropped' ? 'no message' : 'message recorded, being kept (retrying)');
      return;
    }
    call.state = 'goodbye';
    await this.play(call, 'goodbye', outcome === 'dropped' ? ['sound:vm-goodbye'] : ['sound:vm-msgsaved', 'sound:vm-goodbye']);
  }

  /** Tries a message again after a backoff; gives up (leaving it to the next start) after the last attempt. */
  private retrySaveLater(job: SaveJob, err: unknown): void {
    job.attempts++;
    const retry = this.deps.settings.saveRetry ?? {};
    const attempts = retry.attempts ?? 10;
    if (job.attempts >= attempts || !this.running) {
      this.pendingSaves.delete(job.id);
      job.log.error({ err: errorMessage(err), recording: job.name, attempts: job.attempts },
        'the message could not be kept: Asterisk keeps the recording and the next start of switchboard takes it (or fetch it with ARI GET /recordings/stored/{name}/file)');
      if (job.kept) {
        this.emailNotQueued(job, err);
      } else if (job.recorded) {
        this.patchRecord(job.id, { note: `message recorded in Asterisk as ${job.name} but not kept yet: ${errorMessage(err)}`.replace(/[\r\n]+/g, ' ').slice(0, 1000) }, job.log);
      }
      return;
    }
    const delay = Math.min((retry.initialMs ?? 1000) * 2 ** (job.attempts - 1), retry.maxMs ?? 60_000);
    job.log.warn({ err: errorMessage(err), recording: job.name, attempt: job.attempts, retryInMs: delay },
      'the message could not be kept yet: retrying (Asterisk keeps the recording meanwhile)');
    this.pendingSaves.set(job.id, job);
    job.timer = this.timers.setTimeout(() => {
      job.timer = undefined;
      job.running = this.saveMessage(job).then(
        (outcome) => {
          this.pendingSaves.delete(job.id);
          job.log.info({ recording: job.name, attempts: job.attempts + 1, outcome }, 'message kept after retrying');
        },
        (err2: unknown) => this.retrySaveLater(job, err2),
      ).finally(() => { job.running = undefined; });
    }, delay);
  }

  private async recordingFailed(call: Call, recording: LiveRecordingJson): Promise<void> {
    if (call.state !== 'recording') return;
    this.clearTimers(call);
    throw new Error(`recording ${recording.name} failed${recording.cause ? `: ${recording.cause}` : ''}`);
  }

  /** No RecordingFinished came: take what Asterisk stored, if anything. */
  private async recordingOverdue(call: Call): Promise<void> {
    if (call.state !== 'recording' || !call.recordingName) return;
    const name = call.recordingName;
    const stored = await this.deps.ari.getStoredRecording(name);
    if (!stored) {
      if (!call.callerGone) throw new Error(`recording ${name}: neither RecordingFinished nor a stored recording`);
      this.clearTimers(call);
      await this.finish(call, { outcome: 'no message', recordingStatus: 'none' }, 'no recording was stored');
      return;
    }
    const bytes = await this.deps.ari.getStoredRecordingFile(name);
    call.log.warn({ recording: name }, 'RecordingFinished never came: using the stored recording');
    await this.recordingFinished(call, wavDurationSeconds(bytes), bytes);
  }

  /**
   * Keeps (or drops) the message, going on from where an earlier attempt stopped: the duration,
   * the bytes from Asterisk, our file, the call record, the email. Asterisk's copy is deleted only
   * once ours is kept and recorded. Throws when a step fails (the caller retries).
   */
  private async saveMessage(job: SaveJob): Promise<'kept' | 'dropped'> {
    const { agent, name, log } = job;
    const { minDurationSeconds } = this.deps.settings.voicemail;
    if (!job.kept) {
      if (job.durationSeconds === undefined) {
        job.bytes ??= await this.fetchRecording(job);
        if (!job.bytes) return 'dropped';
        job.durationSeconds = wavDurationSeconds(job.bytes);
      }
      const duration = job.durationSeconds;
      if (duration < minDurationSeconds) {
        log.info({ durationSeconds: duration, minDurationSeconds }, 'message too short: dropped');
        this.updateRecord(job, { outcome: 'no message', recordingStatus: 'none', durationSeconds: duration });
        await this.quietly(() => this.deps.ari.deleteStoredRecording(name), log, 'delete the short recording').catch(() => undefined);
        return 'dropped';
      }
      job.bytes ??= await this.fetchRecording(job);
      if (!job.bytes) return 'dropped';
      if (!job.file) {
        let local;
        try {
          local = localDateTime(job.startedAt, agent.timezone, agent.id);
        } catch {
          local = localDateTime(job.startedAt, 'UTC', agent.id);
        }
        const file = join(this.deps.settings.recordingsDir, recordingFileName(local, job.id, 'wav'));
        await mkdir(this.deps.settings.recordingsDir, { recursive: true });
        await writeFileAtomic(file, job.bytes, 0o600);
        job.file = file;
      }
      this.updateRecord(job, {
        outcome: 'voicemail', recordingStatus: 'available', recordingName: name, recordingFile: job.file, durationSeconds: duration,
        emailStatus: hasEmail(agent) ? 'queued' : 'no email',
      });
      job.kept = true;
      log.info({ file: job.file, durationSeconds: duration, bytes: job.bytes.length }, 'message kept');
      job.bytes = undefined;
      // Our copy is the one that counts; Asterisk's is removed so its disk does not fill up.
      await this.quietly(() => this.deps.ari.deleteStoredRecording(name), log, 'delete the recording from Asterisk').catch(() => undefined);
    }
    if (!job.mailDone) {
      if (!hasEmail(agent)) {
        log.warn('the agent has no email address: the message is kept but not emailed');
      } else {
        await this.queueEmail(job);
      }
      job.mailDone = true;
    }
    return 'kept';
  }

  /** Asterisk's recording; undefined when Asterisk has none (recorded as "no message"). */
  private async fetchRecording(job: SaveJob): Promise<Buffer | undefined> {
    try {
      return await this.deps.ari.getStoredRecordingFile(job.name);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      job.log.warn({ recording: job.name }, 'Asterisk stored no recording for the message: "no message"');
      this.updateRecord(job, { outcome: 'no message', recordingStatus: 'none', note: `Asterisk stored no recording ${job.name}` });
      return undefined;
    }
  }

  /** Queues the voicemail email; one that cannot be built or is refused as invalid is not retried. */
  private async queueEmail(job: SaveJob): Promise<void> {
    const { agent, log } = job;
    let input: MailJobInput;
    let attachmentName: string;
    try {
      const email = buildVoicemailEmail({
        agent: { id: agent.id, username: agent.username, displayName: agent.displayName, email: agent.email!, timezone: agent.timezone },
        callerNumber: job.callerNumber, did: job.did, interactionId: job.id, startedAt: job.startedAt, durationSeconds: job.durationSeconds ?? 0,
      }, this.deps.templates);
      attachmentName = email.attachmentName;
      input = { to: email.to, subject: email.subject, text: email.text, interactionId: job.id, attachment: { filename: email.attachmentName, path: job.file! } };
    } catch (err) {
      this.emailNotQueued(job, err);
      return;
    }
    try {
      await this.deps.outbox.enqueue(input);
    } catch (err) {
      if (!(err instanceof MailJobInvalidError)) throw err;
      this.emailNotQueued(job, err);
      return;
    }
    log.info({ to: input.to, attachment: attachmentName }, 'voicemail email queued');
  }

  private emailNotQueued(job: SaveJob, err: unknown): void {
    job.log.error({ err: errorMessage(err) }, 'the voicemail email could not be queued; the message is kept on disk');
    if (job.recorded) this.patchRecord(job.id, { emailStatus: 'failed', note: `email not queued: ${errorMessage(err)}`.slice(0, 1000) }, job.log);
  }

  private updateRecord(job: SaveJob, patch: Partial<CallRecord>): void {
    if (job.recorded) this.deps.records.update(job.id, patch);
  }

  // -------------------------------------------------------------------------------------------
  // Fail safe

  /**
   * Any error in a call's handling ends here. While the caller is still ours and no message has
   * been taken, the caller continues in the dialplan at the DID's `vm` priority (Asterisk's own
   * VoiceMail), else is hung up; the agent leg and bridge are cleaned up. Never throws.
   */
  private async failSafe(call: Call, what: string, err: unknown): Promise<void> {
    try {
      if (call.state === 'done') return;
      const log = call.log;
      this.clearTimers(call);
      let callerHere = !call.callerGone;
      if (callerHere) {
        try {
          callerHere = (await this.deps.ari.getChannel(call.inboundId)) !== undefined;
        } catch {
          // unknown: assume the caller is still there
        }
      }
      log.error({ err: errorMessage(err), step: what, state: call.state, callerHere }, 'call control error');
      if (call.outboundId) {
        const outboundId = call.outboundId;
        this.dropOutbound(call);
        await this.quietly(() => this.deps.ari.hangup(outboundId), log, 'hang up the agent leg');
      }
      if (call.bridgeId) {
        const bridgeId = call.bridgeId;
        await this.quietly(() => this.deps.ari.destroyBridge(bridgeId), log, 'destroy the bridge');
      }
      if (!callerHere) {
        const patch: Partial<CallRecord> | undefined = call.state === 'ringing' || call.state === 'new'
          ? { outcome: 'abandoned', durationSeconds: this.secondsSince(call.startedAt) }
          : call.state === 'saving' || call.state === 'goodbye' ? undefined : { outcome: 'no message' };
        await this.finish(call, patch ? { ...patch, note: noteOf(what, err) } : { note: noteOf(what, err) }, 'caller gone after an error');
        return;
      }
      const messageTaken = call.state === 'saving' || call.state === 'goodbye' || call.state === 'unknown';
      if (!messageTaken) {
        const context = this.deps.store()?.settings.dialplan.didContext ?? call.dialplanContext;
        if (context) {
          try {
            await this.deps.ari.continueInDialplan(call.inboundId, { context, extension: call.did, label: DID_VM_LABEL });
            log.warn({ context, extension: call.did, label: DID_VM_LABEL }, 'caller sent to the dialplan voicemail');
            await this.finish(call, {
              callType: 'Diverted Call', divertReason: 'failed', outcome: 'voicemail', note: noteOf(what, err),
            }, 'handed to the dialplan');
            return;
          } catch (err2) {
            log.error({ err: errorMessage(err2) }, 'continue in the dialplan failed: hanging up');
          }
        }
      }
      await this.quietly(() => this.deps.ari.hangup(call.inboundId), log, 'hang up the caller');
      await this.finish(call, messageTaken ? { note: noteOf(what, err) } : { outcome: 'no message', divertReason: call.divertReason ?? 'failed', note: noteOf(what, err) }, 'hung up after an error');
    } catch (fatal) {
      if (isConnectionLoss(fatal) && call.state !== 'done') {
        // Asterisk may still hold the caller: resync() looks when ARI is back.
        this.interrupt(call, `fail safe after "${what}"`, fatal);
        return;
      }
      this.log.error({ callId: call.id, err: errorMessage(fatal) }, 'call control: the fail-safe itself failed');
      this.forget(call);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Reconnect

  /**
   * After a (re)connect, lists `GET /channels` (retried with backoff while this connection lasts)
   * and compares every call with it (after a disconnect; else the calls a lost request
   * interrupted). While ARI is down, a step whose request fails with the connection, or a timer
   * that fires, stops the call where it is (`interrupt`): nothing is decided from a request whose
   * fate is unknown. Then, per call:
   * - caller channel gone: handled as if its StasisEnd had arrived (ringing → agent leg
   *   cancelled, "abandoned"; bridged → agent leg hung up, bridge destroyed, "answered" with its
   *   duration; greeting → "no message"; recording → the stored recording is fetched at once
   *   (Asterisk finished it on hangup) and kept/emailed as usual, or "no message");
   * - new (the first action's fate unknown): started again (one call record);
   * - ringing: agent leg gone → voicemail ("no answer": the cause was lost); agent leg `Up` in our
   *   app → answered (its StasisStart was missed; a late one is ignored), `Up` not yet in our app
   *   → its StasisStart is awaited; ring time over → voicemail; else the ring timer is set again;
   * - connecting: the bridge is completed (what is already done is not asked twice);
   * - bridged: agent leg gone, or the hang-up was under way → both hung up, bridge destroyed;
   *   otherwise tracking goes on until either side hangs up;
   * - greeting, unknown DID, goodbye: a prompt still playing (`GET /playbacks/{id}`) is awaited; a
   *   greeting or "not in service" that never started is played; otherwise the next step runs
   *   (recording, or the caller is hung up);
   * - recording, caller still there: Asterisk still recording → wait for RecordingFinished (the
   *   overdue timer falls back to the stored recording); stored meanwhile → kept and emailed now;
   *   neither (the record request was lost, or failed) → recorded again;
   * - goodbye: the caller is hung up.
   * Channels in our Stasis app that no call here knows (left by an earlier process): see
   * `adoptBridgedOrphans` for calls that were bridged; other callers are handed to the dialplan's
   * voicemail, other agent legs hung up.
   */
  private async onConnected(connection: number): Promise<void> {
    let channels: ChannelJson[];
    for (let attempt = 1; ; attempt++) {
      try {
        channels = await this.deps.ari.listChannels();
        break;
      } catch (err) {
        // A later connection starts its own check; while this one lasts, retry with backoff.
        if (!this.running || connection !== this.connection || this.ariDown) return;
        const delay = this.backoff(attempt);
        this.log.warn({ err: errorMessage(err), attempt, retryInMs: delay }, 'after (re)connecting: could not list the channels in Asterisk: retrying');
        await new Promise<void>((resolve) => { this.timers.setTimeout(resolve, delay); });
        if (!this.running || connection !== this.connection || this.ariDown) return;
      }
    }
    const byId = new Map(channels.map((c) => [c.id, c]));
    const all = this.resyncPending;
    this.resyncPending = false;
    const calls = [...this.calls].filter((c) => all || c.interrupted !== undefined);
    if (calls.length > 0) {
      this.log.info({ calls: calls.length, channels: channels.length }, 'ARI back: resynchronising calls in progress');
      for (const call of calls) this.enqueue(call, 'resync', () => this.resync(call, byId));
    }
    await this.adoptOrphans(channels);
    if (!this.swept && this.running) {
      this.swept = true;
      await this.sweepStaleRecords();
    }
  }

  /** The wait before attempt `attempt + 1` of a check that failed: doubling from resyncRetryMs, at most 10 s. */
  private backoff(attempt: number): number {
    return Math.min((this.deps.settings.resyncRetryMs ?? 500) * 2 ** (attempt - 1), 10_000);
  }

  /**
   * ARI's connection was lost in a step of the call: nothing is decided from a request whose fate
   * is unknown. The call stays as it is (timers stopped) until resync() compares it with Asterisk:
   * on reconnect, or, when ARI is still up (one request lost), after a backoff.
   */
  private interrupt(call: Call, what: string, err: unknown): void {
    if (call.state === 'done') return;
    this.clearTimers(call);
    if (call.interrupted === undefined) {
      call.log.warn({ step: what, state: call.state, err: errorMessage(err) },
        'ARI connection lost during the call: it is picked up from what Asterisk reports once ARI answers again');
    }
    call.interrupted = what;
    if (!this.ariDown && this.running) {
      const attempt = (call.resyncAttempts ?? 0) + 1;
      call.resyncAttempts = attempt;
      this.timer(call, 'resync', this.backoff(attempt), () => this.resyncOne(call));
    }
  }

  /** resync() for one call, from its own channels (GET /channels/{id}). */
  private async resyncOne(call: Call): Promise<void> {
    const ids = [call.inboundId, ...(call.outboundId ? [call.outboundId] : [])];
    const found = await Promise.all(ids.map((id) => this.deps.ari.getChannel(id)));
    const byId = new Map<string, ChannelJson>();
    for (const ch of found) if (ch) byId.set(ch.id, ch);
    await this.resync(call, byId);
  }

  private async resync(call: Call, channels: Map<string, ChannelJson>): Promise<void> {
    const interrupted = call.interrupted;
    call.interrupted = undefined;
    const inbound = channels.get(call.inboundId);
    const outbound = call.outboundId ? channels.get(call.outboundId) : undefined;
    call.log.info({ state: call.state, callerHere: Boolean(inbound), agentLegHere: Boolean(outbound), ...(interrupted ? { interrupted } : {}) }, 'resync');
    // A caller already known to be gone: what runs for it (e.g. the overdue timer of its recording) goes on.
    if (!inbound && call.callerGone && !interrupted) return;
    // Otherwise the call's timers are set again from what Asterisk reports.
    this.clearTimers(call);
    await this.resyncState(call, inbound, outbound, interrupted !== undefined);
    call.resyncAttempts = 0;
  }

  /** See onConnected's summary; `interrupted`: a step of the call was cut short (requests may be lost). */
  private async resyncState(call: Call, inbound: ChannelJson | undefined, outbound: ChannelJson | undefined, interrupted: boolean): Promise<void> {
    if (!inbound) {
      call.callerGone = true;
      if (call.state === 'recording') {
        await this.recordingOverdue(call);
        return;
      }
      await this.callerGone(call);
      return;
    }
    switch (call.state) {
      case 'new':
        // Nothing reached the caller for sure: start again (the call record is made once).
        await this.begin(call);
        return;
      case 'unknown':
        if (await this.stillPlaying(call, 'noservice')) return;
        if (call.playing !== `${call.id}-noservice`) {
          await this.deps.ari.answer(call.inboundId);
          await this.play(call, 'noservice', ['sound:ss-noservice']);
          return;
        }
        await this.promptFinished(call, `${call.id}-noservice`);
        return;
      case 'ringing': {
        if (!call.outboundId) {
          await this.divert(call, 'failed');
          return;
        }
        if (!outbound) {
          await this.agentLegGone(call, call.outboundId, undefined);
          return;
        }
        if (outbound.state === 'Up') {
          // In our app: its StasisStart was missed. Not yet: its StasisStart is on its way.
          if (outbound.dialplan?.app_name === 'Stasis') await this.agentAnswered(call, call.outboundId);
          return;
        }
        const limit = (call.ringTimeoutSeconds ?? 20) * 1000 + (this.deps.settings.ringGraceMs ?? 2000);
        const rung = call.ringStartedAt ? this.now().getTime() - call.ringStartedAt.getTime() : limit;
        if (rung >= limit) {
          await this.ringTimedOut(call);
          return;
        }
        if (interrupted) await this.quietly(() => this.deps.ari.ring(call.inboundId), call.log, 'ring the caller');
        this.timer(call, 'ring timeout', limit - rung, () => this.ringTimedOut(call));
        return;
      }
      case 'connecting':
        if (!call.outboundId || !outbound) {
          if (call.outboundId) await this.agentLegGone(call, call.outboundId, undefined);
          else await this.endBridged(call);
          return;
        }
        await this.bridgeCall(call, call.outboundId, true);
        return;
      case 'bridged':
        if (call.ending || !call.outboundId) await this.endBridged(call);
        else if (!outbound) await this.agentLegGone(call, call.outboundId, undefined);
        return;
      case 'greeting':
        if (await this.stillPlaying(call, 'greeting')) return;
        if (call.playing !== `${call.id}-greeting`) {
          // The greeting never started: answer (again) and play it.
          await this.deps.ari.answer(call.inboundId);
          await this.playGreeting(call, call.agent!);
          return;
        }
        await this.startRecording(call);
        return;
      case 'recording':
        await this.resyncRecording(call);
        return;
      case 'goodbye':
        if (await this.stillPlaying(call, 'goodbye')) return;
        this.dropPlaybacks(call);
        await this.quietly(() => this.deps.ari.hangup(call.inboundId), call.log, 'hang up the caller');
        await this.finish(call, undefined, 'caller hung up by us');
        return;
      default:
        return;
    }
  }

  /** The call's `kind` prompt is still playing in Asterisk: its overdue timer is set again. */
  private async stillPlaying(call: Call, kind: 'greeting' | 'goodbye' | 'noservice'): Promise<boolean> {
    const playbackId = `${call.id}-${kind}`;
    if (call.playing !== playbackId || !(await this.deps.ari.getPlayback(playbackId))) return false;
    this.byPlayback.set(playbackId, call);
    this.promptTimer(call, kind, playbackId);
    return true;
  }

  /**
   * The caller is still there in "recording": Asterisk is recording (wait for RecordingFinished),
   * has stored it (it ended while ARI was away: keep it now), or has neither (the record request
   * was lost, or the recording failed: record again, with the beep).
   */
  private async resyncRecording(call: Call): Promise<void> {
    const name = call.recordingName!;
    const live = await this.deps.ari.getLiveRecording(name);
    if (live && ['queued', 'recording', 'paused'].includes(live.state)) {
      this.byRecording.set(name, call);
      const { maxDurationSeconds } = this.deps.settings.voicemail;
      const left = (call.recordingStartedAt?.getTime() ?? this.now().getTime()) + maxDurationSeconds * 1000 - this.now().getTime();
      this.timer(call, 'recording overdue', Math.max(0, left) + (this.deps.settings.recordingGraceMs ?? 15_000), () => this.recordingOverdue(call));
      return;
    }
    if (await this.deps.ari.getStoredRecording(name)) {
      call.log.info({ recording: name }, 'the recording ended while ARI was away: taking it now');
      await this.recordingFinished(call, live?.duration);
      return;
    }
    call.log.warn({ recording: name }, 'Asterisk has no recording of the message (the request was lost, or it failed): recording again');
    await this.startRecording(call);
  }

  private async adoptOrphans(channels: ChannelJson[]): Promise<void> {
    const store = this.deps.store();
    const app = this.deps.settings.app ?? store?.settings.dialplan.stasisApp;
    if (!app) return;
    const ours = (ch: ChannelJson): boolean =>
      !this.byChannel.has(ch.id) && ch.dialplan?.app_name === 'Stasis' && (ch.dialplan.app_data ?? '').split(',')[0] === app;
    let candidates = channels.filter(ours);
    if (candidates.length > 0) {
      // A call that arrives while the list is on its way shows up in it before its StasisStart.
      await new Promise<void>((resolve) => {
        this.timers.setTimeout(resolve, this.deps.settings.orphanGraceMs ?? 2000);
      });
      if (!this.running) return;
      candidates = candidates.filter(ours);
    }
    const handled = await this.adoptBridgedOrphans(candidates, ours);
    for (const listed of candidates) {
      if (handled.has(listed.id)) continue;
      try {
        await this.adoptOrphan(listed, ours);
      } catch (err) {
        // One channel's trouble does not stop the others from being handled.
        this.log.error({ channelId: listed.id, err: errorMessage(err) }, 'could not deal with a channel left in our app: it stays in Asterisk (checked again at the next connect)');
      }
    }
  }

  /** A channel in our app that no call here knows (see adoptOrphans). */
  private async adoptOrphan(listed: ChannelJson, ours: (ch: ChannelJson) => boolean): Promise<void> {
    const ch = await this.deps.ari.getChannel(listed.id);
    if (!ch || !ours(ch)) return;
    const first = (ch.dialplan.app_data ?? '').split(',')[1];
    const log = this.log.child({ channelId: ch.id });
    if (first === DIALED_MARKER) {
      log.warn('an agent leg left by an earlier run: hanging it up');
      await this.quietly(() => this.deps.ari.hangup(ch.id), log, 'hang up the orphan agent leg');
      return;
    }
    const did = first ?? ch.dialplan.exten;
    const record = this.orphanRecord(ch, did);
    if (record && (await this.adoptRecordingCaller(record, ch, did))) return;
    const context = this.deps.store()?.settings.dialplan.didContext ?? ch.dialplan.context;
    log.warn({ did, ...(record ? { callId: record.interactionId } : {}) }, 'a caller left in our app by an earlier run: sending it to the dialplan voicemail');
    try {
      await this.deps.ari.continueInDialplan(ch.id, { context, extension: did, label: DID_VM_LABEL });
      if (record) {
        this.patchRecord(record.interactionId, {
          callType: 'Diverted Call', divertReason: record.divertReason ?? 'failed', outcome: 'voicemail',
          note: 'switchboard restarted during the call: the caller was handed to the dialplan voicemail',
        }, log);
      }
    } catch (err) {
      log.error({ err: errorMessage(err) }, 'could not send the orphan caller to the dialplan: hanging up');
      await this.quietly(() => this.deps.ari.hangup(ch.id), log, 'hang up the orphan caller');
    }
  }

  /**
   * The call record of a caller left by an earlier run: the one still "in progress" for this
   * caller and DID that started within a minute of the channel (the channel id is not recorded).
   */
  private orphanRecord(ch: ChannelJson, did: string): CallRecord | undefined {
    const created = asteriskTime(ch.creationtime);
    if (!created) return undefined;
    try {
      const near = this.deps.records.query({ from: new Date(created.getTime() - 60_000), to: new Date(created.getTime() + 60_000) });
      return near.find((r) => r.outcome === 'in progress' && r.calledNumber === did && r.callerNumber === (ch.caller?.number ?? '')
        && ![...this.calls].some((c) => c.id === r.interactionId));
    } catch {
      return undefined;
    }
  }

  /**
   * A caller an earlier run was recording: Asterisk goes on recording (a continue in the dialplan
   * would only run after the recording), so the call is adopted in state "recording" and its
   * RecordingFinished handled as usual (message kept and emailed, goodbye). A recording that has
   * already ended is taken from Asterisk's stored recordings now. False when there is none.
   */
  private async adoptRecordingCaller(record: CallRecord, ch: ChannelJson, did: string): Promise<boolean> {
    const agent = this.deps.store()?.agents.find((a) => a.id === record.agentId);
    if (!agent) return false;
    const name = `switchboard-${record.interactionId}`;
    const live = await this.deps.ari.getLiveRecording(name).catch(() => undefined);
    const active = live !== undefined && ['queued', 'recording', 'paused'].includes(live.state);
    const stored = active ? undefined : await this.deps.ari.getStoredRecording(name).catch(() => undefined);
    if (!active && !stored) return false;
    const call = this.adoptedCall(record, ch, did, agent, 'recording');
    call.recordingName = name;
    this.byRecording.set(name, call);
    if (active) {
      call.log.warn({ recording: name }, 'a caller an earlier run was recording: adopted, the message is taken when the recording ends');
      this.timer(call, 'recording overdue', this.deps.settings.voicemail.maxDurationSeconds * 1000 + (this.deps.settings.recordingGraceMs ?? 15_000), () => this.recordingOverdue(call));
    } else {
      call.log.warn({ recording: name }, 'a caller whose message an earlier run recorded: taking the stored recording now');
      this.enqueue(call, 'recording finished (earlier run)', () => this.recordingFinished(call, undefined));
    }
    return true;
  }

  private adoptedCall(record: CallRecord, ch: ChannelJson, did: string, agent: Agent, state: CallState): Call {
    return this.track({
      id: record.interactionId, did,
      callerNumber: record.callerNumber,
      callerName: ch.caller?.name ?? '',
      inboundId: ch.id,
      ...(ch.dialplan?.context ? { dialplanContext: ch.dialplan.context } : {}),
      log: this.log.child({ callId: record.interactionId, did, channelId: ch.id, agentId: agent.id }),
      startedAt: new Date(record.startedAt),
      state,
      agent,
      recorded: true,
      callType: record.callType,
      ...(record.divertReason ? { divertReason: record.divertReason } : {}),
    }, ch.id);
  }

  /** Starts tracking a call (by each of its channels) with nothing pending on it yet. */
  private track(init: Omit<Call, 'callerGone' | 'hangupRequested' | 'timers' | 'queue'>, ...channelIds: string[]): Call {
    // Completed in place (an object spread here was a fifth of the StasisStart handler's time).
    const call = init as Call;
    call.callerGone = false;
    call.hangupRequested = false;
    call.timers = undefined;
    call.queue = Promise.resolve();
    this.calls.add(call);
    for (const id of channelIds) this.byChannel.set(id, call);
    return call;
  }

  /**
   * Call records an earlier run left "in progress" whose caller has gone: a message Asterisk
   * recorded meanwhile (stored recording `switchboard-<id>`) is kept and emailed as usual; otherwise
   * the record is closed ("abandoned" for a call that never reached voicemail, else "no message")
   * with a note. Runs once, after the first connect.
   */
  private async sweepStaleRecords(): Promise<void> {
    let stale: CallRecord[];
    try {
      stale = this.deps.records.query({ from: new Date(this.startedAt.getTime() - 7 * 24 * 3600_000), to: this.startedAt })
        .filter((r) => r.outcome === 'in progress' && ![...this.calls].some((c) => c.id === r.interactionId));
    } catch (err) {
      this.log.warn({ err: errorMessage(err) }, 'could not look for call records left in progress by an earlier run');
      return;
    }
    for (const record of stale) {
      if (!this.running) return;
      const log = this.log.child({ callId: record.interactionId });
      const agent = this.deps.store()?.agents.find((a) => a.id === record.agentId);
      const name = `switchboard-${record.interactionId}`;
      const stored = agent ? await this.deps.ari.getStoredRecording(name).catch(() => undefined) : undefined;
      if (agent && stored) {
        log.warn({ recording: name }, 'a message recorded while switchboard was away: keeping and emailing it');
        const call = this.adoptedCall(record, { id: `gone-${record.interactionId}` } as ChannelJson, record.calledNumber, agent, 'recording');
        call.callerGone = true;
        call.recordingName = name;
        this.byRecording.set(name, call);
        this.enqueue(call, 'recording finished (earlier run)', () => this.recordingFinished(call, undefined));
        continue;
      }
      log.warn('a call left in progress by an earlier run: closing its record');
      this.patchRecord(record.interactionId, {
        outcome: record.callType === 'Direct Agent Call' && !record.divertReason ? 'abandoned' : 'no message',
        note: 'switchboard was stopped during the call and the caller had gone when it came back',
      }, log);
    }
  }

  private patchRecord(id: string, patch: Partial<CallRecord>, log: Logger): void {
    try {
      this.deps.records.update(id, patch);
    } catch (err) {
      log.error({ err: errorMessage(err) }, 'could not update the call record');
    }
  }

  /**
   * Calls an earlier run had bridged (bridge `<interaction id>-bridge`) are not interrupted: with
   * both sides still there the call is adopted and goes on until either side hangs up (then
   * handled as usual: the other side hung up, the bridge destroyed, the call record finished with
   * the duration since the bridge was made). With one side left, that side is hung up and the
   * bridge destroyed. Returns the channels dealt with here.
   */
  private async adoptBridgedOrphans(candidates: ChannelJson[], ours: (ch: ChannelJson) => boolean): Promise<Set<string>> {
    const handled = new Set<string>();
    let bridges: BridgeJson[];
    try {
      bridges = await this.deps.ari.listBridges();
    } catch (err) {
      this.log.warn({ err: errorMessage(err) }, 'could not list the bridges: calls bridged by an earlier run are treated as unbridged');
      return handled;
    }
    const argsOf = (ch: ChannelJson): string[] => (ch.dialplan?.app_data ?? '').split(',').slice(1);
    for (const bridge of bridges) {
      const m = /^(\d+)-bridge$/.exec(bridge.id);
      if (!m) continue;
      const id = m[1]!;
      if ([...this.calls].some((c) => c.id === id)) continue;
      const log = this.log.child({ callId: id, bridgeId: bridge.id });
      const answeredAt = asteriskTime(bridge.creationtime) ?? this.now();
      if (bridge.channels.length === 0) {
        // Both sides hung up while we were away: Asterisk keeps a Stasis bridge until it is destroyed.
        log.warn('an empty bridge left by an earlier run: destroying it');
        await this.quietly(() => this.deps.ari.destroyBridge(bridge.id), log, 'destroy the bridge');
        this.finishOrphanRecord(id, undefined, log);
        continue;
      }
      const members = candidates.filter((c) => bridge.channels.includes(c.id) && !handled.has(c.id));
      const agentLeg = members.find((c) => argsOf(c)[0] === DIALED_MARKER && argsOf(c)[1] === id);
      const caller = members.find((c) => argsOf(c)[0] !== DIALED_MARKER);
      if (!agentLeg && !caller) continue;
      for (const c of [agentLeg, caller]) if (c) handled.add(c.id);
      if (agentLeg && caller) {
        this.adoptBridged(id, bridge, caller, agentLeg, answeredAt, log);
        continue;
      }
      // One side hung up while we were away: the other goes too.
      const left = (agentLeg ?? caller)!;
      log.warn({ channelId: left.id, side: agentLeg ? 'agent' : 'caller' },
        'a call bridged by an earlier run lost one side while switchboard was away: hanging up the other');
      const current = await this.deps.ari.getChannel(left.id).catch(() => undefined);
      if (current && ours(current)) await this.quietly(() => this.deps.ari.hangup(left.id), log, 'hang up the remaining side');
      await this.quietly(() => this.deps.ari.destroyBridge(bridge.id), log, 'destroy the bridge');
      this.finishOrphanRecord(id, answeredAt, log);
    }
    return handled;
  }

  private adoptBridged(id: string, bridge: BridgeJson, caller: ChannelJson, agentLeg: ChannelJson, answeredAt: Date, log: Logger): void {
    const record = this.recordOf(id);
    const agent = record ? this.deps.store()?.agents.find((a) => a.id === record.agentId) : undefined;
    const did = (caller.dialplan?.app_data ?? '').split(',')[1] ?? caller.dialplan?.exten ?? record?.calledNumber ?? '';
    const call = this.track({
      id, did,
      callerNumber: caller.caller?.number ?? record?.callerNumber ?? '',
      callerName: caller.caller?.name ?? '',
      inboundId: caller.id,
      ...(caller.dialplan?.context ? { dialplanContext: caller.dialplan.context } : {}),
      log: this.log.child({ callId: id, did, channelId: caller.id, ...(agent ? { agentId: agent.id } : {}) }),
      startedAt: record ? new Date(record.startedAt) : (asteriskTime(caller.creationtime) ?? answeredAt),
      state: 'bridged',
      ...(agent ? { agent } : {}),
      recorded: record !== undefined,
      callType: 'Direct Agent Call',
      outboundId: agentLeg.id,
      bridgeId: bridge.id,
      answeredAt,
    }, caller.id, agentLeg.id);
    log.warn({ callerChannel: caller.id, agentChannel: agentLeg.id },
      'a call bridged by an earlier run: adopted, it goes on until either side hangs up');
    // Either side may have hung up between the list and now (its events went to nobody).
    this.enqueue(call, 'adopt', async () => {
      const [inbound, outbound] = await Promise.all([this.deps.ari.getChannel(caller.id), this.deps.ari.getChannel(agentLeg.id)]);
      if (!inbound) {
        if (call.callerGone) return;
        call.callerGone = true;
        await this.callerGone(call);
      } else if (!outbound && call.outboundId) {
        await this.agentLegGone(call, call.outboundId, undefined);
      }
    });
  }

  /**
   * The record of a bridged call that ended while we were away: "answered", with the duration up
   * to now when one side was still there (`answeredAt`), else the duration left as it was; a note says so.
   */
  private finishOrphanRecord(id: string, answeredAt: Date | undefined, log: Logger): void {
    const record = this.recordOf(id);
    if (!record) return;
    try {
      this.deps.records.update(id, answeredAt
        ? { outcome: 'answered', durationSeconds: this.secondsSince(answeredAt), note: 'ended while switchboard was not connected to ARI: the duration runs to when it reconnected' }
        : { outcome: 'answered', note: 'ended while switchboard was not connected to ARI: duration unknown' });
    } catch (err) {
      log.error({ err: errorMessage(err) }, 'could not update the call record');
    }
  }

  private recordOf(id: string): CallRecord | undefined {
    try {
      return this.deps.records.get(id);
    } catch {
      return undefined;
    }
  }

  // -------------------------------------------------------------------------------------------
  // Helpers

  /**
   * Builds the store's DID → agent index now rather than on the store's first DID call (10k
   * agents: ~4 ms that call's first action would otherwise wait): the daemon calls it when it
   * loads a store ('storeLoaded', after the Reload). Idempotent.
   */
  indexStore(store: Store): void {
    this.didIndex(store);
  }

  private didIndex(store: Store): Map<string, Agent> {
    let index = this.indexes.get(store);
    if (!index) {
      index = new Map();
      for (const agent of store.agents) {
        for (const d of agent.dids) {
          index.set(d, agent);
          index.set(d.replace(/^\+/, ''), agent);
        }
      }
      this.indexes.set(store, index);
    }
    return index;
  }

  private agentFor(store: Store, did: string): Agent | undefined {
    const index = this.didIndex(store);
    return index.get(did) ?? index.get(did.replace(/^\+/, ''));
  }

  private app(store: Store): string {
    return this.deps.settings.app ?? store.settings.dialplan.stasisApp;
  }

  private initialRecord(call: Call, agent: Agent): CallRecord {
    return {
      interactionId: call.id,
      callType: call.callType,
      ...(call.divertReason ? { divertReason: call.divertReason as CallRecord['divertReason'] } : {}),
      agentId: agent.id,
      agentUsername: agent.username,
      startedAt: call.startedAt.toISOString(),
      callerNumber: call.callerNumber.slice(0, 1000),
      calledNumber: call.did.slice(0, 1000),
      durationSeconds: 0,
      outcome: 'in progress',
      recordingStatus: 'none',
      emailStatus: 'not applicable',
    };
  }

  private update(call: Call, patch: Partial<CallRecord>): void {
    if (call.recorded) this.deps.records.update(call.id, patch);
  }

  private async play(call: Call, kind: 'greeting' | 'goodbye' | 'noservice', media: string[]): Promise<void> {
    const playbackId = `${call.id}-${kind}`;
    this.byPlayback.set(playbackId, call);
    await this.deps.ari.play(call.inboundId, media, playbackId);
    call.playing = playbackId;
    this.promptTimer(call, kind, playbackId);
  }

  private promptTimer(call: Call, kind: string, playbackId: string): void {
    this.timer(call, `${kind} prompt overdue`, this.deps.settings.promptTimeoutMs ?? 60_000, async () => {
      if (!this.byPlayback.has(playbackId)) return;
      call.log.warn({ playbackId }, 'PlaybackFinished never came: going on');
      this.byPlayback.delete(playbackId);
      await this.promptFinished(call, playbackId);
    });
  }

  private dropOutbound(call: Call): void {
    if (call.outboundId) this.byChannel.delete(call.outboundId);
    call.outboundId = undefined;
    if (call.state === 'ringing') this.clearTimers(call);
  }

  private dropPlaybacks(call: Call): void {
    for (const [id, c] of this.byPlayback) if (c === call) this.byPlayback.delete(id);
  }

  private async finish(call: Call, patch: Partial<CallRecord> | undefined, why: string): Promise<void> {
    if (call.state === 'done') return;
    if (patch && call.recorded) {
      try {
        this.deps.records.update(call.id, patch);
      } catch (err) {
        call.log.error({ err: errorMessage(err) }, 'could not update the call record');
      }
    }
    const record = call.recorded ? this.deps.records.get(call.id) : undefined;
    // A message still being kept (retrySaveLater) finishes its record itself.
    if (record?.outcome === 'in progress' && !this.pendingSaves.has(call.id)) {
      try {
        this.deps.records.update(call.id, { outcome: 'no message' });
      } catch { /* logged above */ }
    }
    call.log.info({ why, outcome: record?.outcome, durationSeconds: record?.durationSeconds }, 'call finished');
    this.forget(call);
  }

  private forget(call: Call): void {
    call.state = 'done';
    this.clearTimers(call);
    this.calls.delete(call);
    for (const map of [this.byChannel, this.byPlayback, this.byRecording]) {
      for (const [key, c] of map) if (c === call) map.delete(key);
    }
  }

  /**
   * A request whose failure does not change what happens next (logged; 404 ignored), except a lost
   * ARI connection: that is thrown, so that the step stops and resync() finishes it from what
   * Asterisk reports (see interrupt).
   */
  private async quietly(fn: () => Promise<unknown>, log: Logger, what: string): Promise<void> {
    try {
      await fn();
    } catch (err) {
      if (isConnectionLoss(err)) throw err;
      if (!isNotFound(err)) log.warn({ err: errorMessage(err) }, `could not ${what}`);
    }
  }

  private secondsSince(date: Date): number {
    return Math.max(0, (this.now().getTime() - date.getTime()) / 1000);
  }
}

/** Asterisk's timestamps (`2026-11-22T01:28:34.970+0000`) as a Date; undefined when absent or unreadable. */
function asteriskTime(text: string | undefined): Date | undefined {
  if (!text) return undefined;
  const ms = Date.parse(text.replace(/([+-]\d\d)(\d\d)$/, '$1:$2'));
  return Number.isNaN(ms) ? undefined : new Date(ms);
}

/** Seconds of audio in a PCM WAV file (from its byte rate); 0 when it is not one. */
export function wavDurationSeconds(bytes: Buffer): number {
  if (bytes.length < 44 || bytes.toString('ascii', 0, 4) !== 'RIFF' || bytes.toString('ascii', 8, 12) !== 'WAVE') return 0;
  const byteRate = bytes.readUInt32LE(28);
  return byteRate > 0 ? (bytes.length - 44) / byteRate : 0;
}

/** `"Name" <number>` for the agent's display, or the number alone when the name is empty or unsafe. */
export function callerIdOf(name: string, number: string): string {
  const n = name.trim();
  if (!n || /["<>\u0000-\u001f\u007f]/.test(n) || n === number) return number;
  return `"${n}" <${number}>`;
}

/**
 * An ARI failure that says nothing about the call: the request never reached Asterisk, or its
 * answer was lost with the connection. The call is resynchronised instead of failed.
 */
export function isConnectionLoss(err: unknown): boolean {
  return err instanceof PeerDisconnectedError || (err instanceof PeerRequestError && err.details.unreachable === true);
}

function hasEmail(agent: Agent): boolean {
  return Boolean(agent.email && agent.email.trim());
}

function noteOf(what: string, err: unknown): string {
  return `error during "${what}": ${errorMessage(err)}`.replace(/[\r\n]+/g, ' ').slice(0, 1000);
}

/** The presence a decision was made on. */
type PresenceSeen = { state: string; reason?: string };

/** Ring or divert (`reason`), and what it was decided on (DidWorkflow.decide). */
interface Decision {
  reason: string | undefined;
  presence: PresenceSeen | undefined;
  presenceError: unknown;
}

/** The decision for a presence (none: logged out). */
function decided(presence: PresenceSeen | undefined): Decision {
  const state = presence?.state ?? 'logged out';
  const reason = state === 'available' ? undefined : state === 'paused' || state === 'busy' ? state : 'logged out';
  return { reason, presence, presenceError: undefined };
}

/** A presence lookup that failed: ring (see decide). */
function presenceFailed(err: unknown): Decision {
  return { reason: undefined, presence: undefined, presenceError: err };
}

/** What firstActionNow decided, and the first request it sent. */
interface FirstAction extends Decision {
  store: Store;
  agent: Agent;
  sent: Promise<void>;
}

/** Call starts resumed per turn of the event loop (~50-80 µs each: ~1 ms per turn). */
const LATER_PER_TURN = 16;
/** The rest of a call's start waits until no new call arrived for this long (a burst is over)... */
const BURST_QUIET_MS = 2;
/** ...but never longer than this (a steady stream of calls still gets its calls started). */
const BURST_MAX_WAIT_MS = 50;
