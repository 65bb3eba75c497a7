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
 *     through the durable outbox ("voicemail", "queued" once the outbox has it; the wiring sets
 *     "sent" on delivery), or "no email". A message that cannot be kept (or whose email cannot be
 *     queued) at once is retried with backoff, waiting for ARI while it is down; Asterisk's copy is
 *     deleted only once ours is kept, and the call record stays "in progress" until the email is
 *     queued, so the sweep of the next connect or start takes what this process could not.
 *
 * ARI lost (a request fails with the connection, or a timer fires while it is down): the call waits
 * where it is and is picked up from Asterisk's state when ARI is back (see onConnected); messages
 * being kept wait for ARI too and are tried again on reconnect.
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
import type { AriPort, BridgeJson, ChannelJson, LiveRecordingJson, PlaybackJson, StoredRecordingJson } from '../asterisk/ari/types.js';
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
   * records, the outbox) is retried: first after `initialMs`, doubling up to `maxMs` (defaults
   * 1000, 60000). Tries that fail because ARI's connection was lost, or while ARI is down, do not
   * count: the message waits for ARI and is tried again when it is back. After `attempts` failures
   * of another kind (default 10: about four minutes) this process gives up: the call record stays
   * "in progress" with a note, and the sweep of the next connect or start takes the message
   * (sweepStaleRecords). Asterisk's copy is only deleted once ours is kept.
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
  /**
   * Asterisk answered the originate to the agent. False while the request is on its way: if ARI's
   * connection is lost before the answer and resync finds no agent leg, the originate is sent again.
   */
  originateAcked?: boolean;
  /** The message went to a SaveJob (recordingFinished): its call record is the job's to finish. */
  handedToSave?: boolean;
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
  /** The email status the call record gets once the email step is over ('queued', or 'failed' when it cannot be built). */
  emailStatus?: 'queued' | 'failed';
  /** The note the call record gets with that status (why the email was not queued). */
  emailNote?: string;
  /** The call record says "voicemail" with its email status: nothing is left to do. */
  closed?: boolean;
  /** Failures that count towards giving up (not those of a lost ARI connection). */
  attempts: number;
  /** Tries that failed in a row, whatever the cause (the backoff). */
  tries: number;
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
  /** The sweep of call records left in progress (sweepStaleRecords) under way, and its retry timer. */
  private sweeping: Promise<void> | undefined;
  private sweepTimer: unknown;
  private sweepAttempts = 0;
  /** Waits of onConnected and of the sweep (backoff, orphan grace): stop() ends them at once. */
  private readonly sleepers = new Map<unknown, () => void>();

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
      // Messages whose saving waited for ARI (or was backing off) are tried again now.
      this.rearmSaves();
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
    // onConnected and the sweep do not wait out their backoff or grace: they see `running` and stop.
    for (const [handle, wake] of this.sleepers) {
      this.timers.clearTimeout(handle);
      wake();
    }
    this.sleepers.clear();
    if (this.sweepTimer !== undefined) this.timers.clearTimeout(this.sweepTimer);
    this.sweepTimer = undefined;
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
      // One still trying says itself how it ended (retrySaveLater: 'stopping').
      if (!job.running) this.leaveForLater(job, undefined, 'stopping');
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
      ...(this.sweeping ? [this.sweeping] : []),
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
    await this.originateAgent(call, endpoint, this.app(store), timeoutSeconds);
  }

  /**
   * Originates the agent leg (`call.outboundId`). `originateAcked` says whether Asterisk answered:
   * a request lost with ARI's connection is thrown (resync() originates again, with the same
   * channel id, when it finds no leg); any other failure sends the caller to voicemail.
   */
  private async originateAgent(call: Call, endpoint: string, app: string, timeoutSeconds: number): Promise<void> {
    const outboundId = call.outboundId!;
    call.originateAcked = false;
    try {
      await this.deps.ari.originate({
        endpoint,
        app,
        appArgs: `${DIALED_MARKER},${call.id}`,
        callerId: callerIdOf(call.callerName, call.callerNumber),
        timeoutSeconds,
        channelId: outboundId,
      });
      call.originateAcked = true;
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
   * recording until our copy is kept, and a later run (the sweep at the next connect or start)
   * takes it if this one cannot. `durationSeconds` undefined: measured from the file.
   */
  private async recordingFinished(call: Call, durationSeconds: number | undefined): Promise<void> {
    if (call.state !== 'recording') return;
    this.clearTimers(call);
    call.state = 'saving';
    call.handedToSave = true;
    const name = call.recordingName!;
    this.byRecording.delete(name);
    const job: SaveJob = {
      id: call.id, agent: call.agent!, name, did: call.did, callerNumber: call.callerNumber,
      startedAt: call.recordingStartedAt ?? call.startedAt, recorded: call.recorded, log: call.log, attempts: 0, tries: 0,
      ...(durationSeconds !== undefined ? { durationSeconds } : {}),
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

  /** Tries a message (again) now, in the background; a failure goes to retrySaveLater. */
  private runSave(job: SaveJob): void {
    if (job.timer !== undefined) this.timers.clearTimeout(job.timer);
    job.timer = undefined;
    if (job.running) return;
    this.pendingSaves.set(job.id, job);
    const retried = job.tries > 0;
    job.running = this.saveMessage(job).then(
      (outcome) => {
        this.pendingSaves.delete(job.id);
        if (retried) job.log.info({ recording: job.name, tries: job.tries + 1, outcome }, 'message kept after retrying');
      },
      (err: unknown) => this.retrySaveLater(job, err),
    ).finally(() => { job.running = undefined; });
  }

  /**
   * Tries a message again after a backoff. A try that failed because ARI's connection was lost, or
   * while ARI is down, does not count: the message waits for ARI (re-armed on reconnect). Only
   * `saveRetry.attempts` failures of another kind (the disk, the call records, Asterisk refusing)
   * make this process give up, leaving the message to the next connect or start (leaveForLater).
   */
  private retrySaveLater(job: SaveJob, err: unknown): void {
    if (!this.running) {
      this.pendingSaves.delete(job.id);
      this.leaveForLater(job, err, 'stopping');
      return;
    }
    const retry = this.deps.settings.saveRetry ?? {};
    const attempts = retry.attempts ?? 10;
    // Asterisk's copy is only needed until ours is kept: once kept, ARI's state does not matter.
    const waitsForAri = this.ariDown && !job.kept;
    if (!isConnectionLoss(err) && !waitsForAri) job.attempts++;
    job.tries++;
    if (job.attempts >= attempts) {
      this.pendingSaves.delete(job.id);
      this.leaveForLater(job, err, 'gave up');
      return;
    }
    this.pendingSaves.set(job.id, job);
    if (waitsForAri) {
      job.log.warn({ interactionId: job.id, err: errorMessage(err), recording: job.name },
        'the message could not be kept yet (ARI is not connected): tried again when ARI is back (Asterisk keeps the recording meanwhile)');
      return;
    }
    const delay = Math.min((retry.initialMs ?? 1000) * 2 ** Math.min(job.tries - 1, 30), retry.maxMs ?? 60_000);
    job.log.warn({ interactionId: job.id, err: errorMessage(err), recording: job.name, attempt: job.attempts, retryInMs: delay },
      'the message could not be kept yet: retrying (Asterisk keeps the recording meanwhile)');
    job.timer = this.timers.setTimeout(() => this.runSave(job), delay);
  }

  /** ARI is back: every message waiting (for ARI, or in its backoff) is tried again now. */
  private rearmSaves(): void {
    for (const job of this.pendingSaves.values()) {
      if (job.running) continue;
      job.tries = 0;
      this.runSave(job);
    }
  }

  /**
   * A message this process stops trying to keep (it is stopping, or a failure persisted): its call
   * record stays "in progress" with a note saying why, and the sweep of the next connect or start
   * takes it up: from Asterisk's stored recording while ours is not kept, else from our file (the
   * email is queued then). Logged with the interaction id.
   */
  private leaveForLater(job: SaveJob, err: unknown, why: 'stopping' | 'gave up'): void {
    const fields = { interactionId: job.id, recording: job.name, attempts: job.attempts, ...(err !== undefined ? { err: errorMessage(err) } : {}) };
    const cause = err !== undefined ? `: ${errorMessage(err)}` : '';
    if (!job.kept) {
      if (why === 'stopping') {
        job.log.warn(fields, 'stopping with a message not kept yet: Asterisk keeps the recording and the next start takes it');
      } else {
        job.log.error(fields,
          'the message could not be kept: Asterisk keeps the recording and switchboard takes it at the next reconnect to ARI or start (or fetch it with ARI GET /recordings/stored/{name}/file)');
      }
      this.notePending(job, `message recorded in Asterisk as ${job.name} but not kept yet${cause}`);
    } else if (!job.mailDone) {
      if (why === 'stopping') {
        job.log.warn({ ...fields, file: job.file },
          'stopping before the voicemail email was queued: the message is kept on disk, its call record stays in progress and the next start queues the email');
      } else {
        job.log.error({ ...fields, file: job.file },
          'the voicemail email could not be queued: the message is kept on disk, its call record stays in progress and the email is queued at the next reconnect to ARI or start');
      }
      this.notePending(job, `message kept as ${job.file ?? '?'} but its email not queued yet${cause}`);
    } else if (!job.closed) {
      job.log.error({ ...fields, emailStatus: job.emailStatus },
        'the voicemail email is queued but the call record could not be finished: it stays in progress');
    }
  }

  private notePending(job: SaveJob, note: string): void {
    if (job.recorded) this.patchRecord(job.id, { note: note.replace(/[\r\n]+/g, ' ').slice(0, 1000) }, job.log);
  }

  private async recordingFailed(call: Call, recording: LiveRecordingJson): Promise<void> {
    if (call.state !== 'recording') return;
    this.clearTimers(call);
    throw new Error(`recording ${recording.name} failed${recording.cause ? `: ${recording.cause}` : ''}`);
  }

  /**
   * No RecordingFinished came: take what Asterisk stored, if anything. Only whether it exists is
   * asked here; the file is fetched by the SaveJob (recordingFinished), whose failures are retried.
   */
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
    call.log.warn({ recording: name }, 'RecordingFinished never came: using the stored recording');
    await this.recordingFinished(call, undefined);
  }

  /**
   * Keeps (or drops) the message, going on from where an earlier attempt stopped: the duration,
   * the bytes from Asterisk, our file, the call record, the email, the record's final state.
   * Asterisk's copy is deleted only once ours is kept and recorded. The record says "voicemail"
   * only once the email is in the outbox (or will not be sent): until then it stays "in progress",
   * so that a later run takes up an email this one could not queue. Throws when a step fails (the
   * caller retries).
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
      this.updateRecord(job, { recordingStatus: 'available', recordingName: name, recordingFile: job.file, durationSeconds: duration });
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
        job.emailStatus = await this.queueEmail(job);
      }
      job.mailDone = true;
    }
    if (!job.closed) {
      const current = job.recorded ? this.recordOf(job.id) : undefined;
      let emailStatus: CallRecord['emailStatus'] = hasEmail(agent) ? job.emailStatus ?? 'queued' : 'no email';
      // The outbox may have delivered it (or given up on it) before this update, when the update
      // failed at first and is retried: its word stands.
      if (emailStatus === 'queued' && (current?.emailStatus === 'sent' || current?.emailStatus === 'failed')) emailStatus = current.emailStatus;
      // A note saying the message was still being kept (leaveForLater) is no longer true.
      const staleNote = current?.note !== undefined && PENDING_NOTE.test(current.note);
      this.updateRecord(job, { outcome: 'voicemail', emailStatus, ...(job.emailNote ? { note: job.emailNote } : staleNote ? { note: undefined } : {}) });
      job.closed = true;
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

  /**
   * Queues the voicemail email: 'queued' once the outbox has it on disk; 'failed' (logged, with a
   * note for the record) for an email that cannot be built or that the outbox refuses as invalid,
   * which no retry would change. Any other failure (the outbox's disk) is thrown: retried.
   */
  private async queueEmail(job: SaveJob): Promise<'queued' | 'failed'> {
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
      return this.emailNotQueued(job, err);
    }
    try {
      await this.deps.outbox.enqueue(input);
    } catch (err) {
      if (!(err instanceof MailJobInvalidError)) throw err;
      return this.emailNotQueued(job, err);
    }
    log.info({ to: input.to, attachment: attachmentName }, 'voicemail email queued');
    return 'queued';
  }

  private emailNotQueued(job: SaveJob, err: unknown): 'failed' {
    job.log.error({ interactionId: job.id, err: errorMessage(err) }, 'the voicemail email could not be queued (it would not be accepted on a retry either); the message is kept on disk');
    job.emailNote = `email not queued: ${errorMessage(err)}`.replace(/[\r\n]+/g, ' ').slice(0, 1000);
    return 'failed';
  }

  private updateRecord(job: SaveJob, patch: Partial<CallRecord>): void {
    if (job.recorded) this.deps.records.update(job.id, patch);
  }

  // -------------------------------------------------------------------------------------------
  // Fail safe

  /**
   * Any error in a call's handling ends here. While the caller is still ours and no message has
   * been taken, the caller continues in the dialplan at the DID's `vm` priority (Asterisk's own
   * VoiceMail), else is hung up; the agent leg and bridge are cleaned up. A caller gone while
   * recording may have left a message: it goes to the SaveJob (kept, or "no message" only once
   * Asterisk says it has no recording), never closed as "no message" here. A continue whose answer
   * is lost with ARI's connection hangs nobody up: resync() finds where the caller is. Never throws.
   */
  private async failSafe(call: Call, what: string, err: unknown): Promise<void> {
    try {
      if (call.state === 'done') return;
      const log = call.log;
      this.clearTimers(call);
      let callerHere = !call.callerGone;
      let inbound: ChannelJson | undefined;
      if (callerHere) {
        try {
          inbound = await this.deps.ari.getChannel(call.inboundId);
          callerHere = inbound !== undefined;
        } catch {
          // unknown: assume the caller is still there
        }
      }
      log.error({ err: errorMessage(err), step: what, state: call.state, callerHere }, 'call control error');
      if (inbound && !this.inOurApp(inbound)) {
        // Already in the dialplan (a continue whose answer was lost): not ours to touch any more.
        await this.leftToDialplan(call, inbound);
        return;
      }
      if (call.outboundId) {
        const outboundId = call.outboundId;
        this.dropOutbound(call);
        await this.quietly(() => this.deps.ari.hangup(outboundId), log, 'hang up the agent leg');
      }
      if (call.bridgeId) {
        const bridgeId = call.bridgeId;
        await this.quietly(() => this.deps.ari.destroyBridge(bridgeId), log, 'destroy the bridge');
      }
      if (!callerHere && call.state === 'recording' && call.recordingName && call.agent) {
        // Asterisk finishes (and stores) a recording when the caller hangs up: the SaveJob takes
        // it, retrying what fails; only Asterisk answering "no such recording" means "no message".
        call.callerGone = true;
        log.warn({ recording: call.recordingName }, 'the caller has gone while recording: the message is taken from Asterisk\'s stored recording, if any');
        await this.recordingFinished(call, undefined);
        return;
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
            // The continue may have reached Asterisk (its answer lost): the caller may be in the
            // dialplan's VoiceMail now. resync() looks at where it is before doing anything.
            if (isConnectionLoss(err2)) throw err2;
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
   * - goodbye: the caller is hung up;
   * - caller still there but no longer in our Stasis app (a continue to the dialplan's voicemail
   *   whose answer was lost): left alone, the call finished as handed to the dialplan;
   * - ringing, no agent leg in Asterisk and the originate never answered (lost with the
   *   connection): originated again with the same channel id while ring time is left.
   * Channels in our Stasis app that no call here knows (left by an earlier process): see
   * `adoptBridgedOrphans` for calls that were bridged; other callers are handed to the dialplan's
   * voicemail, other agent legs hung up. Then, at every connect, call records left in progress are
   * swept (sweepStaleRecords). Each bridge and channel is dealt with on its own: one that fails
   * does not stop the rest.
   */
  private async onConnected(connection: number): Promise<void> {
    let channels: ChannelJson[];
    for (let attempt = 1; ; attempt++) {
      try {
        channels = await this.deps.ari.listChannels();
        break;
      } catch (err) {
        // A later connection starts its own check; while this one lasts, retry with backoff.
        if (!this.current(connection)) return;
        const delay = this.backoff(attempt);
        this.log.warn({ err: errorMessage(err), attempt, retryInMs: delay }, 'after (re)connecting: could not list the channels in Asterisk: retrying');
        await this.sleep(delay);
        if (!this.current(connection)) return;
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
    const unresolved = await this.adoptOrphans(channels);
    if (!this.current(connection)) return;
    // Every connect: what an earlier run left, and what this one left while ARI was away or after
    // a save it gave up on (see sweepStaleRecords).
    this.sweepAttempts = 0;
    await this.sweep(connection, unresolved);
  }

  /** This connection is still the current one, ARI is up and we are running. */
  private current(connection: number): boolean {
    return this.running && connection === this.connection && !this.ariDown;
  }

  /** Waits `ms` (a backoff, a grace period); stop() ends the wait at once. */
  private sleep(ms: number): Promise<void> {
    if (!this.running) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const handle = this.timers.setTimeout(() => {
        this.sleepers.delete(handle);
        resolve();
      }, ms);
      this.sleepers.set(handle, resolve);
    });
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
    if (inbound && !this.inOurApp(inbound)) {
      await this.leftToDialplan(call, inbound);
      return;
    }
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
        const limit = (call.ringTimeoutSeconds ?? 20) * 1000 + (this.deps.settings.ringGraceMs ?? 2000);
        const rung = call.ringStartedAt ? this.now().getTime() - call.ringStartedAt.getTime() : limit;
        if (!outbound) {
          // The originate was lost with the connection before Asterisk answered it, and Asterisk
          // has no such leg: the agent was never rung. Ring time left: originate again (same id).
          const store = this.deps.store();
          const ringMs = (call.ringTimeoutSeconds ?? 20) * 1000 - rung;
          if (call.originateAcked === false && ringMs > 0 && store && call.agent) {
            call.log.warn({ outboundId: call.outboundId, ringLeftMs: ringMs }, 'the originate to the agent was lost with ARI\'s connection and Asterisk has no agent leg: ringing the agent again');
            await this.quietly(() => this.deps.ari.ring(call.inboundId), call.log, 'ring the caller');
            this.timer(call, 'ring timeout', limit - rung, () => this.ringTimedOut(call));
            await this.originateAgent(call, dialTarget(call.agent, store.settings.backend), this.app(store), Math.max(1, Math.ceil(ringMs / 1000)));
            return;
          }
          await this.agentLegGone(call, call.outboundId, undefined);
          return;
        }
        if (outbound.state === 'Up') {
          // Answered: no ring timer may hang it up (resync() cleared the call's timers; said again
          // here because this case sets none). In our app: its StasisStart was missed. Not yet:
          // its StasisStart is on its way.
          this.clearTimers(call);
          if (outbound.dialplan?.app_name === 'Stasis') await this.agentAnswered(call, call.outboundId);
          return;
        }
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

  /**
   * The caller's channel is in our Stasis app. Asterisk reports the application a channel runs
   * (`dialplan.app_name`, `app_data` = `<app>,<args>` for Stasis); without them (an older
   * Asterisk), the channel is taken to be ours.
   */
  private inOurApp(ch: ChannelJson): boolean {
    const appName = ch.dialplan?.app_name;
    if (appName === undefined) return true;
    if (appName !== 'Stasis') return false;
    const app = this.deps.settings.app ?? this.deps.store()?.settings.dialplan.stasisApp;
    return app === undefined || (ch.dialplan.app_data ?? '').split(',')[0] === app;
  }

  /**
   * The caller is still there but no longer in our app: it runs the dialplan (our continue reached
   * Asterisk; its answer was lost with ARI's connection). It is not touched: the call is finished
   * as handed to the dialplan (its voicemail), our agent leg and bridge, if any, cleaned up.
   */
  private async leftToDialplan(call: Call, inbound: ChannelJson): Promise<void> {
    call.log.warn({ app: inbound.dialplan.app_name, context: inbound.dialplan.context, extension: inbound.dialplan.exten, state: call.state },
      'the caller has left our Stasis app for the dialplan (a continue whose answer was lost): left there, the call is finished');
    if (call.outboundId) {
      const outboundId = call.outboundId;
      this.dropOutbound(call);
      await this.quietly(() => this.deps.ari.hangup(outboundId), call.log, 'hang up the agent leg');
    }
    if (call.bridgeId) {
      const bridgeId = call.bridgeId;
      await this.quietly(() => this.deps.ari.destroyBridge(bridgeId), call.log, 'destroy the bridge');
    }
    const note = 'the caller was handed to the dialplan voicemail (ARI\'s connection was lost meanwhile)';
    const messageTaken = call.state === 'saving' || call.state === 'goodbye' || call.handedToSave;
    await this.finish(call, messageTaken
      ? { note }
      : { callType: 'Diverted Call', divertReason: 'failed', outcome: 'voicemail', note }, 'handed to the dialplan');
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

  /**
   * Channels in our app that no call here knows (see onConnected). Returns the interaction ids of
   * the call records of callers that could not be dealt with (they stay in progress: the sweep
   * leaves them to the next connect).
   */
  private async adoptOrphans(channels: ChannelJson[]): Promise<Set<string>> {
    const unresolved = new Set<string>();
    const store = this.deps.store();
    const app = this.deps.settings.app ?? store?.settings.dialplan.stasisApp;
    if (!app) return unresolved;
    const ours = (ch: ChannelJson): boolean =>
      !this.byChannel.has(ch.id) && ch.dialplan?.app_name === 'Stasis' && (ch.dialplan.app_data ?? '').split(',')[0] === app;
    let candidates = channels.filter(ours);
    if (candidates.length > 0) {
      // A call that arrives while the list is on its way shows up in it before its StasisStart.
      await this.sleep(this.deps.settings.orphanGraceMs ?? 2000);
      if (!this.running) return unresolved;
      candidates = candidates.filter(ours);
    }
    const handled = await this.adoptBridgedOrphans(candidates, ours);
    for (const listed of candidates) {
      if (!this.running) return unresolved;
      if (handled.has(listed.id)) continue;
      try {
        await this.adoptOrphan(listed, ours);
      } catch (err) {
        // One channel's trouble does not stop the others from being handled.
        this.log.error({ channelId: listed.id, err: errorMessage(err) }, 'could not deal with a channel left in our app: it stays in Asterisk (checked again at the next connect)');
        const args = (listed.dialplan?.app_data ?? '').split(',');
        const record = args[1] !== DIALED_MARKER ? this.orphanRecord(listed, args[1] ?? listed.dialplan?.exten ?? '') : undefined;
        if (record) unresolved.add(record.interactionId);
      }
    }
    return unresolved;
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
    if (record?.recordingStatus === 'available') {
      // Its message was kept: the caller was hearing "message saved, goodbye". Hung up, not sent to
      // a second voicemail; the record is the sweep's (it queues the email if it was not).
      log.warn({ callId: record.interactionId }, 'a caller whose message an earlier run kept was left in our app: hanging up');
      await this.quietly(() => this.deps.ari.hangup(ch.id), log, 'hang up the orphan caller');
      return;
    }
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
   * Runs sweepStaleRecords for this connection, after any sweep still under way (one at a time).
   * `exclude`: records of callers left in our app that could not be dealt with.
   */
  private sweep(connection: number, exclude: ReadonlySet<string> = new Set()): Promise<void> {
    if (this.sweepTimer !== undefined) this.timers.clearTimeout(this.sweepTimer);
    this.sweepTimer = undefined;
    const run: Promise<void> = (this.sweeping ?? Promise.resolve())
      .then(() => (this.current(connection) ? this.sweepStaleRecords(connection, exclude) : undefined))
      .catch((err: unknown) => {
        this.log.error({ err: errorMessage(err) }, 'could not check the call records left in progress');
      })
      .finally(() => { if (this.sweeping === run) this.sweeping = undefined; });
    this.sweeping = run;
    return run;
  }

  /**
   * Call records left "in progress" (by an earlier run, or by this one: ARI lost during the call,
   * a save given up) that no call or message here is working on. Runs at every connect:
   * - kept on disk, its email not queued (recording available): the email is queued now;
   * - a message Asterisk stored (`switchboard-<id>`): kept and emailed as usual (a SaveJob);
   * - Asterisk has none (it answers 404): the record is closed ("abandoned" for a call that never
   *   reached voicemail, else "no message") with a note.
   * Any other answer leaves the record in progress: the sweep runs again after a backoff while
   * this connection lasts (a lost connection: at the next connect).
   */
  private async sweepStaleRecords(connection: number, exclude: ReadonlySet<string>): Promise<void> {
    let stale: CallRecord[];
    try {
      stale = this.deps.records.query({ from: new Date(this.startedAt.getTime() - 7 * 24 * 3600_000), to: this.now() })
        .filter((r) => r.outcome === 'in progress');
    } catch (err) {
      this.log.warn({ err: errorMessage(err) }, 'could not look for call records left in progress');
      this.sweepAgain(connection, exclude, 1);
      return;
    }
    let left = 0;
    for (const record of stale) {
      if (!this.current(connection)) return;
      const id = record.interactionId;
      if (exclude.has(id) || this.busyWith(id)) continue;
      const log = this.log.child({ callId: id });
      const agent = this.deps.store()?.agents.find((a) => a.id === record.agentId);
      const job = (over: Partial<SaveJob>): SaveJob => ({
        id, agent: agent!, name: record.recordingName ?? `switchboard-${id}`, did: record.calledNumber, callerNumber: record.callerNumber,
        startedAt: new Date(record.startedAt), recorded: true, log, attempts: 0, tries: 0, ...over,
      });
      if (record.recordingStatus === 'available' && record.recordingFile) {
        if (!agent) {
          log.warn({ agentId: record.agentId }, 'a message kept without its email queued, for an agent no longer in the store: not emailed');
          this.patchRecord(id, { outcome: 'voicemail', emailStatus: 'failed', note: `agent ${record.agentId} is no longer in the store: the message was not emailed` }, log);
          continue;
        }
        log.warn({ file: record.recordingFile }, 'a message kept on disk whose email was not queued: queueing it now');
        this.runSave(job({ kept: true, file: record.recordingFile, durationSeconds: record.durationSeconds }));
        continue;
      }
      const name = `switchboard-${id}`;
      let stored: StoredRecordingJson | undefined;
      if (agent) {
        try {
          // undefined only when Asterisk answers 404: it has no such recording.
          stored = await this.deps.ari.getStoredRecording(name);
        } catch (err) {
          if (isConnectionLoss(err)) return; // the next connect sweeps again
          log.warn({ recording: name, err: errorMessage(err) },
            'could not ask Asterisk for the message of a call left in progress: its record stays in progress (asked again)');
          left++;
          continue;
        }
        if (!this.current(connection)) return;
        if (this.busyWith(id)) continue;
      }
      if (agent && stored) {
        log.warn({ recording: name }, 'a message recorded while switchboard was away: keeping and emailing it');
        this.runSave(job({ name }));
        continue;
      }
      const earlierRun = Date.parse(record.startedAt) < this.startedAt.getTime();
      log.warn(earlierRun ? 'a call left in progress by an earlier run: closing its record' : 'a call left in progress (ARI was lost during it): closing its record');
      this.patchRecord(id, {
        outcome: record.callType === 'Direct Agent Call' && !record.divertReason ? 'abandoned' : 'no message',
        note: earlierRun
          ? 'switchboard was stopped during the call and the caller had gone when it came back'
          : 'ARI was lost during the call and the caller had gone when switchboard could look again',
      }, log);
    }
    if (left > 0) this.sweepAgain(connection, exclude, left);
    else this.sweepAttempts = 0;
  }

  /** Some records could not be checked: the sweep runs again after a backoff, while this connection lasts. */
  private sweepAgain(connection: number, exclude: ReadonlySet<string>, records: number): void {
    if (!this.current(connection)) return;
    const delay = this.backoff(++this.sweepAttempts);
    this.log.warn({ records, retryInMs: delay }, 'call records left in progress could not all be checked: checking them again');
    this.sweepTimer = this.timers.setTimeout(() => {
      this.sweepTimer = undefined;
      void this.sweep(connection, exclude);
    }, delay);
  }

  /** A call here, or a message being kept, is working on this call record. */
  private busyWith(id: string): boolean {
    if (this.pendingSaves.has(id)) return true;
    for (const c of this.calls) if (c.id === id) return true;
    return false;
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
    for (const bridge of bridges) {
      if (!this.running) return handled;
      const m = /^(\d+)-bridge$/.exec(bridge.id);
      if (!m) continue;
      const id = m[1]!;
      if ([...this.calls].some((c) => c.id === id)) continue;
      try {
        await this.adoptBridgedOrphan(bridge, id, candidates, ours, handled);
      } catch (err) {
        // One bridge's trouble (a request lost with the connection too) does not stop the rest of
        // the check: the other bridges, the other channels, the sweep. This one is looked at again
        // at the next connect.
        this.log.error({ callId: id, bridgeId: bridge.id, err: errorMessage(err) },
          'could not deal with a bridge left by an earlier run: it stays in Asterisk (checked again at the next connect)');
      }
    }
    return handled;
  }

  /** One bridge of adoptBridgedOrphans (`id`: its interaction id); adds the channels it dealt with to `handled`. */
  private async adoptBridgedOrphan(bridge: BridgeJson, id: string, candidates: ChannelJson[], ours: (ch: ChannelJson) => boolean, handled: Set<string>): Promise<void> {
    const argsOf = (ch: ChannelJson): string[] => (ch.dialplan?.app_data ?? '').split(',').slice(1);
    const log = this.log.child({ callId: id, bridgeId: bridge.id });
    const answeredAt = asteriskTime(bridge.creationtime) ?? this.now();
    if (bridge.channels.length === 0) {
      // Both sides hung up while we were away: Asterisk keeps a Stasis bridge until it is destroyed.
      log.warn('an empty bridge left by an earlier run: destroying it');
      await this.quietly(() => this.deps.ari.destroyBridge(bridge.id), log, 'destroy the bridge');
      this.finishOrphanRecord(id, undefined, log);
      return;
    }
    const members = candidates.filter((c) => bridge.channels.includes(c.id) && !handled.has(c.id));
    const agentLeg = members.find((c) => argsOf(c)[0] === DIALED_MARKER && argsOf(c)[1] === id);
    const caller = members.find((c) => argsOf(c)[0] !== DIALED_MARKER);
    if (!agentLeg && !caller) return;
    for (const c of [agentLeg, caller]) if (c) handled.add(c.id);
    if (agentLeg && caller) {
      this.adoptBridged(id, bridge, caller, agentLeg, answeredAt, log);
      return;
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
    const record = call.recorded ? this.recordOf(call.id) : undefined;
    // A message handed to a SaveJob finishes its record itself (or leaves it to a later run).
    if (record?.outcome === 'in progress' && !call.handedToSave && !this.pendingSaves.has(call.id)) {
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

/** The notes leaveForLater writes while a message is still to be kept or emailed. */
const PENDING_NOTE = /^message (recorded in Asterisk as \S+ but not kept yet|kept as .* but its email not queued yet)/;

/** Call starts resumed per turn of the event loop (~50-80 µs each: ~1 ms per turn). */
const LATER_PER_TURN = 16;
/** The rest of a call's start waits until no new call arrived for this long (a burst is over)... */
const BURST_QUIET_MS = 2;
/** ...but never longer than this (a steady stream of calls still gets its calls started). */
const BURST_MAX_WAIT_MS = 50;
