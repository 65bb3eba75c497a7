/**
 * The ARI port: what the call-control workflow depends on. `AriClient` implements it over
 * ari-client; tests implement it with a stub or drive `AriClient` against `FakeAriServer`.
 *
 * The JSON types are the subset of the models in Asterisk's api-docs (channels.json, endpoints.json,
 * recordings.json, playbacks.json, bridges.json, deviceStates.json, events.json) that switchboard
 * reads. Field names are Asterisk's, unchanged.
 */
import type { EventEmitter } from 'node:events';

export interface AriSettings {
  /** Asterisk's HTTP server, e.g. http://127.0.0.1:8088 (no /ari suffix). */
  url: string;
  username: string;
  password: string;
  /** Stasis application name, e.g. 'switchboard'. */
  app: string;
  /**
   * Every REST call (and each connect step) fails with PeerTimeoutError after this long (default
   * 5000); with PeerDisconnectedError instead when the events socket was lost while it was in flight.
   */
  requestTimeoutMs?: number;
  /** First reconnect delay (default 500 ms); doubles per failure... */
  reconnectInitialMs?: number;
  /** ...up to this (default 30000 ms). Reconnecting never gives up. */
  reconnectMaxMs?: number;
  /** WebSocket ping period; a ping unanswered by the next period counts as a dead socket (default 15000, 0 = off). */
  pingIntervalMs?: number;
  /**
   * REST requests over the events WebSocket (Asterisk 20.14+, 21.9+, 22.4+: `RESTRequest` frames
   * answered by `RESTResponse` frames on the same socket). 'auto' (default): probed at each connect
   * with `GET asterisk/ping`; used when Asterisk answers, HTTP otherwise. 'off': always HTTP.
   */
  restOverWebSocket?: 'auto' | 'off';
  /** How long the connect-time probe waits for a RESTResponse before using HTTP (default 2000 ms). */
  restProbeTimeoutMs?: number;
}

/** channels.json `CallerID`. */
export interface CallerIdJson { name: string; number: string }

/** channels.json `DialplanCEP`. */
export interface DialplanCepJson { context: string; exten: string; priority: number; app_name?: string; app_data?: string }

export type ChannelState =
  | 'Down' | 'Rsrved' | 'OffHook' | 'Dialing' | 'Ring' | 'Ringing' | 'Up' | 'Busy' | 'Dialing Offhook' | 'Pre-ring' | 'Unknown';

/** channels.json `Channel`. */
export interface ChannelJson {
  id: string;
  name: string;
  state: ChannelState | string;
  protocol_id?: string;
  caller: CallerIdJson;
  connected: CallerIdJson;
  accountcode: string;
  dialplan: DialplanCepJson;
  creationtime: string;
  language: string;
  channelvars?: Record<string, string>;
  caller_rdnis?: string;
  tenantid?: string;
}

/** endpoints.json `Endpoint`. */
export interface EndpointJson {
  technology: string;
  resource: string;
  state?: 'unknown' | 'offline' | 'online' | string;
  channel_ids: string[];
}

/** bridges.json `Bridge`. */
export interface BridgeJson {
  id: string;
  technology: string;
  bridge_type: 'mixing' | 'holding' | string;
  bridge_class: string;
  creator: string;
  name: string;
  channels: string[];
  creationtime: string;
}

/** playbacks.json `Playback`. */
export interface PlaybackJson {
  id: string;
  media_uri: string;
  next_media_uri?: string;
  target_uri: string;
  language?: string;
  state: 'queued' | 'playing' | 'continuing' | 'done' | 'failed' | string;
}

/** recordings.json `LiveRecording`. */
export interface LiveRecordingJson {
  name: string;
  format: string;
  target_uri: string;
  state: 'queued' | 'recording' | 'paused' | 'done' | 'failed' | 'canceled' | string;
  duration?: number;
  talking_duration?: number;
  silence_duration?: number;
  cause?: string;
}

/** recordings.json `StoredRecording`. */
export interface StoredRecordingJson { name: string; format: string }

/** deviceStates.json `DeviceState`. */
export interface DeviceStateJson { name: string; state: string }

/** events.json `Event` (base of every event). */
export interface AriEventBase {
  type: string;
  application: string;
  timestamp: string;
  asterisk_id?: string;
}

export interface StasisStartEvent extends AriEventBase { type: 'StasisStart'; args: string[]; channel: ChannelJson; replace_channel?: ChannelJson }
export interface StasisEndEvent extends AriEventBase { type: 'StasisEnd'; channel: ChannelJson }
export interface ChannelStateChangeEvent extends AriEventBase { type: 'ChannelStateChange'; channel: ChannelJson }
export interface ChannelDestroyedEvent extends AriEventBase { type: 'ChannelDestroyed'; cause: number; cause_txt: string; tech_cause?: number; channel: ChannelJson }
export interface ChannelHangupRequestEvent extends AriEventBase { type: 'ChannelHangupRequest'; cause?: number; tech_cause?: number; soft?: boolean; channel: ChannelJson }
export interface ChannelDtmfReceivedEvent extends AriEventBase { type: 'ChannelDtmfReceived'; digit: string; duration_ms: number; channel: ChannelJson }
export interface PlaybackStartedEvent extends AriEventBase { type: 'PlaybackStarted'; playback: PlaybackJson }
export interface PlaybackFinishedEvent extends AriEventBase { type: 'PlaybackFinished'; playback: PlaybackJson }
export interface RecordingStartedEvent extends AriEventBase { type: 'RecordingStarted'; recording: LiveRecordingJson }
export interface RecordingFinishedEvent extends AriEventBase { type: 'RecordingFinished'; recording: LiveRecordingJson }
export interface RecordingFailedEvent extends AriEventBase { type: 'RecordingFailed'; recording: LiveRecordingJson }
export interface EndpointStateChangeEvent extends AriEventBase { type: 'EndpointStateChange'; endpoint: EndpointJson }
export interface DeviceStateChangedEvent extends AriEventBase { type: 'DeviceStateChanged'; device_state: DeviceStateJson }
export interface DialEvent extends AriEventBase {
  type: 'Dial'; caller?: ChannelJson; peer: ChannelJson; forward?: string; forwarded?: ChannelJson; dialstring?: string; dialstatus: string;
}

/** Event types the port re-emits under their own name (every event also goes out as 'event'). */
export interface AriEventMap {
  StasisStart: StasisStartEvent;
  StasisEnd: StasisEndEvent;
  ChannelStateChange: ChannelStateChangeEvent;
  ChannelDestroyed: ChannelDestroyedEvent;
  ChannelHangupRequest: ChannelHangupRequestEvent;
  ChannelDtmfReceived: ChannelDtmfReceivedEvent;
  PlaybackStarted: PlaybackStartedEvent;
  PlaybackFinished: PlaybackFinishedEvent;
  RecordingStarted: RecordingStartedEvent;
  RecordingFinished: RecordingFinishedEvent;
  RecordingFailed: RecordingFailedEvent;
  EndpointStateChange: EndpointStateChangeEvent;
  DeviceStateChanged: DeviceStateChangedEvent;
  Dial: DialEvent;
}
export type AriEventType = keyof AriEventMap;
export const ARI_EVENT_TYPES: readonly AriEventType[] = [
  'StasisStart', 'StasisEnd', 'ChannelStateChange', 'ChannelDestroyed', 'ChannelHangupRequest', 'ChannelDtmfReceived',
  'PlaybackStarted', 'PlaybackFinished', 'RecordingStarted', 'RecordingFinished', 'RecordingFailed',
  'EndpointStateChange', 'DeviceStateChanged', 'Dial',
];

/** Any event as Asterisk sent it (plain JSON). */
export type AriEvent = AriEventMap[AriEventType] | (AriEventBase & Record<string, unknown>);

export interface RecordOptions {
  name: string;
  format: string;
  maxDurationSeconds: number;
  maxSilenceSeconds: number;
  beep: boolean;
  /** 'none' | 'any' | '*' | '#' */
  terminateOn: string;
  ifExists?: 'fail' | 'overwrite';
}

export interface OriginateOptions {
  /** e.g. 'PJSIP/1001' */
  endpoint: string;
  app: string;
  appArgs?: string;
  callerId?: string;
  timeoutSeconds: number;
  channelId?: string;
  variables?: Record<string, string>;
}

/**
 * Events: 'event' (every event), each `AriEventType` by name, 'connected' (after every (re)connect:
 * re-adopt calls in progress with listChannels) and 'disconnected' (the events socket is gone).
 * Events carry the plain JSON objects Asterisk sent.
 */
export interface AriPort extends EventEmitter {
  answer(channelId: string): Promise<void>;
  ring(channelId: string): Promise<void>;
  ringStop(channelId: string): Promise<void>;
  /** `reason`: one of ARI's hangup reasons ('normal', 'busy', 'no_answer', ...). */
  hangup(channelId: string, reason?: string): Promise<void>;
  continueInDialplan(channelId: string, opts?: { context?: string; extension?: string; priority?: number; label?: string }): Promise<void>;
  /** `media` like 'sound:vm-intro'; played in order. */
  play(channelId: string, media: string[], playbackId?: string): Promise<{ id: string }>;
  record(channelId: string, opts: RecordOptions): Promise<{ name: string }>;
  originate(opts: OriginateOptions): Promise<{ id: string }>;
  createBridge(opts?: { type?: string; bridgeId?: string }): Promise<{ id: string }>;
  addChannel(bridgeId: string, channelIds: string[]): Promise<void>;
  destroyBridge(bridgeId: string): Promise<void>;
  /** undefined when Asterisk answers 404. */
  getChannel(channelId: string): Promise<ChannelJson | undefined>;
  listChannels(): Promise<ChannelJson[]>;
  /** Every bridge in Asterisk (GET /bridges). */
  listBridges(): Promise<BridgeJson[]>;
  listEndpoints(): Promise<EndpointJson[]>;
  getStoredRecordingFile(name: string): Promise<Buffer>;
  deleteStoredRecording(name: string): Promise<void>;
  /** undefined when Asterisk answers 404. */
  getStoredRecording(name: string): Promise<StoredRecordingJson | undefined>;
  /** A recording in progress (GET /recordings/live/{name}); undefined when Asterisk answers 404. */
  getLiveRecording(name: string): Promise<LiveRecordingJson | undefined>;
  /** A playback still playing or queued (GET /playbacks/{id}); undefined when Asterisk answers 404 (it has ended). */
  getPlayback(playbackId: string): Promise<PlaybackJson | undefined>;
}
