/**
 * Shared pieces of the end-to-end benchmarks (apply latency, DID calls): a clock every process on
 * the machine shares, a harness process started from a suite, a child process driven over IPC,
 * and the daemon's logger as production builds it (JSON at info level, synchronous writes), sent
 * to a file instead of stderr.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { createLogger, type Logger } from '../../log.js';

export const E2E_DIR = path.dirname(fileURLToPath(import.meta.url));

/**
 * Milliseconds on CLOCK_MONOTONIC (process.hrtime), which is one clock for every process on the
 * machine: a time taken in the daemon's process can be compared with one taken in the fake's.
 */
export function monoMs(): number {
  return Number(process.hrtime.bigint() / 1000n) / 1000;
}

export function rssMB(): number {
  return process.memoryUsage.rss() / 1048576;
}

export function maxRssMB(): number {
  return process.resourceUsage().maxRSS / 1024;
}

/** The daemon's logger (createLogger, info, JSON) writing to `file`, buffered as `switchboard serve` writes to stderr. */
export function fileLogger(file: string, level = 'info'): Logger {
  return createLogger({ level, pretty: false, destination: pino.destination({ dest: file, sync: false, mkdir: true }) as unknown as NodeJS.WritableStream });
}

/**
 * Runs `node [nodeArgs] dist/bench/e2e/<script> JSON` in a fresh process and returns the JSON object it
 * prints last on stdout. Progress lines on its stderr that start with `# ` are passed to `log`.
 */
export function runHarness<T>(script: string, args: unknown, log: (m: string) => void, nodeArgs: readonly string[] = []): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeArgs, path.join(E2E_DIR, script), JSON.stringify(args)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let partial = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      err += d;
      partial += d;
      let nl: number;
      while ((nl = partial.indexOf('\n')) !== -1) {
        const line = partial.slice(0, nl);
        partial = partial.slice(nl + 1);
        if (line.startsWith('# ')) log(`  ${line.slice(2)}`);
      }
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const last = out.trim().split('\n').at(-1) ?? '';
      if (code !== 0 || !last.startsWith('{')) {
        const tail = err.trim().split('\n').filter((l) => !l.startsWith('# ')).slice(-8).join(' | ');
        reject(new Error(`bench harness ${script} exited with ${code}: ${tail || out.slice(-500)}`));
        return;
      }
      resolve(JSON.parse(last) as T);
    });
  });
}

/** Progress line for runHarness's log (stderr, prefixed so it is told apart from errors). */
export function progress(msg: string): void {
  process.stderr.write(`# ${msg}\n`);
}

/** Messages from a child started with `startChild`, typed loosely: each carries a `type`. */
export interface ChildMessage {
  type: string;
  [key: string]: unknown;
}

/**
 * A child process (the daemon side of a benchmark) driven over IPC: `next(type)` resolves with the
 * next message of that type (messages are queued until asked for), `send` posts one.
 */
export class Child {
  private readonly queue: ChildMessage[] = [];
  private readonly waiters: { types: string[]; resolve: (m: ChildMessage) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }[] = [];
  private exited: Error | undefined;
  /** Set once a `stopped` message arrived: the child exits on its own. */
  stoppedCleanly = false;
  private stderr = '';
  readonly proc: ChildProcess;

  constructor(script: string, args: unknown, onMessage?: (m: ChildMessage) => void) {
    // SWITCHBOARD_BENCH_CHILD_ARGS: extra node flags for the child, e.g. `--cpu-prof --cpu-prof-dir=/tmp/p`.
    const execArgv = (process.env['SWITCHBOARD_BENCH_CHILD_ARGS'] ?? '').split(' ').filter(Boolean);
    this.proc = fork(path.join(E2E_DIR, script), [JSON.stringify(args)], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'], execArgv });
    this.proc.stderr?.setEncoding('utf8').on('data', (d: string) => {
      this.stderr = (this.stderr + d).slice(-4000);
    });
    this.proc.on('message', (raw) => {
      const m = raw as ChildMessage;
      if (m.type === 'stopped') this.stoppedCleanly = true;
      onMessage?.(m);
      const i = this.waiters.findIndex((w) => w.types.includes(m.type));
      if (i >= 0) {
        const [w] = this.waiters.splice(i, 1);
        clearTimeout(w!.timer);
        w!.resolve(m);
      } else {
        this.queue.push(m);
      }
    });
    this.proc.on('exit', (code, signal) => {
      this.exited = new Error(`bench child ${script} exited (${code ?? signal}): ${this.stderr.trim().split('\n').slice(-6).join(' | ')}`);
      for (const w of this.waiters.splice(0)) {
        clearTimeout(w.timer);
        w.reject(this.exited);
      }
    });
  }

  send(msg: ChildMessage): void {
    this.proc.send(msg);
  }

  /** The next message of `type` (queued or future); rejects after `timeoutMs` or if the child exits. */
  next<T extends ChildMessage = ChildMessage>(type: string | string[], timeoutMs = 30_000): Promise<T> {
    const types = typeof type === 'string' ? [type] : type;
    const i = this.queue.findIndex((m) => types.includes(m.type));
    if (i >= 0) return Promise.resolve(this.queue.splice(i, 1)[0] as T);
    if (this.exited) return Promise.reject(this.exited);
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        const k = this.waiters.findIndex((w) => w.timer === timer);
        if (k >= 0) this.waiters.splice(k, 1);
        reject(new Error(`bench child: no "${types.join('" or "')}" message within ${timeoutMs} ms (queued: ${this.queue.map((m) => m.type).join(', ') || 'none'}; stderr: ${this.stderr.trim().split('\n').slice(-3).join(' | ')})`));
      }, timeoutMs);
      this.waiters.push({ types, resolve: resolve as (m: ChildMessage) => void, reject, timer });
    });
  }

  /** Drops queued messages of `type` (e.g. events from before a phase started). */
  discard(type: string): void {
    for (let i = this.queue.length - 1; i >= 0; i--) if (this.queue[i]!.type === type) this.queue.splice(i, 1);
  }

  /** Waits for the process to exit (killing it after `timeoutMs`). */
  async exit(timeoutMs = 15_000): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.proc.kill('SIGKILL');
      }, timeoutMs);
      this.proc.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

/** In a child: posts a message to the parent. */
export function toParent(msg: ChildMessage): void {
  process.send?.(msg);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Stops the daemon app at the parent's request, reports its memory, and exits the child. */
export function stopAndExit(app: { stop(): Promise<void> }): void {
  void app.stop().then(() => {
    toParent({ type: 'stopped', maxRssMB: maxRssMB(), rssMB: rssMB() });
    process.disconnect?.();
    process.exit(0);
  });
}
