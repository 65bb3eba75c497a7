/**
 * Contains two misbehaviours of swagger-client 2.0.26 (inside ari-client 2.2.0) while ari-client's
 * connect() loads the api-docs:
 *
 * 1. On any failure to load them (401, 404, 5xx, connection reset) `SwaggerApi.prototype.fail`
 *    calls the failure callback (so connect() rejects) and then `throw`s the message, a plain
 *    string, from inside an HTTP response handler: an uncaught exception that exits the process.
 *    A non-JSON body makes `JSON.parse` throw there too (and connect() never settles).
 * 2. Asterisk serves Swagger 1.1 resource listings, so swagger-client prints
 *    `[ 'This API is using a deprecated version of Swagger! …' ]` with console.log, to stdout.
 *
 * While at least one connect() is pending (it may finish long after we gave up on it), the guard
 * keeps one process 'uncaughtException' listener that swallows only swagger-client's failures, and
 * wraps console.log to drop only that notice. When the last pending connect() settles, both are
 * removed. Any other uncaught exception keeps Node's default behaviour (the process dies with it)
 * unless the application has its own 'uncaughtException' listener.
 */
import type { Logger } from '../../log.js';

const NOTICE = 'This API is using a deprecated version of Swagger';
const SWAGGER_FAILURE = [
  /^\d{3} : /, // "401 : Unauthorized http://…/ari/api-docs/resources.json"
  /^Can't read (from server|swagger JSON)/,
  /^Unable to read api '/,
  /^Please specify the protocol for /,
  /^SwaggerResources must have a path/,
];

export function isSwaggerNotice(args: unknown[]): boolean {
  const first = args[0];
  return Array.isArray(first) && typeof first[0] === 'string' && first[0].startsWith(NOTICE);
}

export function isSwaggerFailure(err: unknown): boolean {
  if (typeof err === 'string') return SWAGGER_FAILURE.some((re) => re.test(err));
  if (err instanceof Error && typeof err.stack === 'string') {
    return /[\\/]node_modules[\\/](swagger-client|shred)[\\/]/.test(err.stack);
  }
  return false;
}

export class SwaggerGuard {
  private pending = 0;
  private trap?: (err: unknown) => void;
  private wrapper?: { fn: (...args: unknown[]) => void; previous: (...args: unknown[]) => void; active: boolean };

  constructor(private readonly log: Logger, private readonly scrub: (s: string) => string) {}

  /** Wraps a connect() promise: the guard stays up until it settles, whenever that is. */
  around<T>(start: () => Promise<T>): Promise<T> {
    this.acquire();
    let p: Promise<T>;
    try {
      p = Promise.resolve(start());
    } catch (err) {
      this.release();
      return Promise.reject(err);
    }
    p.then(() => this.release(), () => this.release());
    return p;
  }

  get active(): boolean { return this.pending > 0; }

  private acquire(): void {
    if (this.pending++ > 0) return;
    const trap = (err: unknown): void => {
      if (isSwaggerFailure(err)) {
        this.log.debug({ failure: this.scrub(typeof err === 'string' ? err : String((err as Error).message)) },
          'ari-client: swallowed swagger-client exception while loading the api-docs');
        return;
      }
      // Not ours. If nobody else listens, behave as if we were not here: crash with this error.
      if (process.listenerCount('uncaughtException') === 1) {
        process.off('uncaughtException', trap);
        process.nextTick(() => { throw err; });
      }
    };
    this.trap = trap;
    process.on('uncaughtException', trap);

    const previous = console.log;
    const wrapper = {
      previous,
      active: true,
      fn: (...args: unknown[]): void => {
        if (wrapper.active && isSwaggerNotice(args)) {
          this.log.debug('ari-client: dropped swagger-client\'s "deprecated version of Swagger" notice');
          return;
        }
        wrapper.previous.apply(console, args);
      },
    };
    this.wrapper = wrapper;
    console.log = wrapper.fn;
  }

  private release(): void {
    if (--this.pending > 0) return;
    this.pending = 0;
    if (this.trap) process.off('uncaughtException', this.trap);
    this.trap = undefined;
    const w = this.wrapper;
    this.wrapper = undefined;
    if (w) {
      w.active = false;
      // Someone wrapped console.log after us: leave our (now pass-through) wrapper in their chain.
      if (console.log === w.fn) console.log = w.previous;
    }
  }
}
