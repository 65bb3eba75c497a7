import type { Logger } from '../log.js';
import type { Renderer } from '../render/render.js';

/** The part of the AMI client apply uses (AmiClient satisfies it; tests may pass a stub). */
export interface AmiPort {
  action(name: string, fields?: Record<string, string | string[]>, opts?: { timeoutMs?: number }): Promise<Record<string, string>>;
  listAction(name: string, fields?: Record<string, string>, opts?: { timeoutMs?: number }): Promise<{ response: Record<string, string>; events: Record<string, string>[] }>;
  readonly connected: boolean;
}

export interface ApplyDeps {
  renderer: Renderer;
  /** The directory Asterisk reads (e.g. /etc/asterisk). */
  outDir: string;
  /** Undefined = write the files only ("no reload sent"). */
  ami?: AmiPort;
  logger: Logger;
  /** Generations kept (default 5). */
  generations?: number;
  /** Default `<outDir>/.switchboard`: lock, manifest and generations. */
  stateDir?: string;
  /** Retries of a `Reload` answered "A reload is in progress" (default 5 attempts, 500 ms doubling). */
  reloadRetry?: { attempts: number; delayMs: number };
  /** Per verification query, and how long chan_sip (which reloads in the background) may take (default 5000). */
  verifyTimeoutMs?: number;
  /** Per `Reload` action (default 60000: res_pjsip takes ~2 s per 10,000 endpoints). */
  reloadTimeoutMs?: number;
}

export interface RefusedOption {
  /** Agent username (the Asterisk object name). */
  agent: string;
  /** `endpoint`, `aor`, `auth`, `identify`, `peer` or `mailbox`. */
  object: string;
  /** The config option as written in the file (`allow`, `call_group`, …), or `(object)` for presence. */
  option: string;
  expected: string;
  actual: string;
}

export interface ApplyReport {
  /** Id of this apply; when files were written, the generation that holds what they replaced. */
  generation: string;
  dryRun: boolean;
  /** Files written (or, in a dry run, that would be). */
  changedFiles: string[];
  /** Modules reloaded (dry run: that would be), in order. */
  modules: string[];
  /** Usernames. */
  agents: { added: string[]; changed: string[]; removed: string[] };
  /** Human reasons, e.g. "transport-tls: bind changed": pjsip transports need an Asterisk restart. */
  restartNeeded: string[];
  /** Asterisk was asked and showed every added/changed/removed object as expected. */
  verified: boolean;
  rolledBack: boolean;
  refused: RefusedOption[];
  reloadSent: boolean;
  durationMs: number;
}

export interface GenerationInfo {
  id: string;
  createdAt: string;
  /** Managed files the generation holds (the others did not exist then). */
  files: string[];
}
