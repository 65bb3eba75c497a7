const NOTICE = 'This API is using a deprecated version of Swagger';
const SWAGGER_FAILURE = [
    /^\d{3} : /, // "401 : Unauthorized http://…/ari/api-docs/resources.json"
    /^Can't read (from server|swagger JSON)/,
    /^Unable to read api '/,
    /^Please specify the protocol for /,
    /^SwaggerResources must have a path/,
];
export function isSwaggerNotice(args) {
    const first = args[0];
    return Array.isArray(first) && typeof first[0] === 'string' && first[0].startsWith(NOTICE);
}
export function isSwaggerFailure(err) {
    if (typeof err === 'string')
        return SWAGGER_FAILURE.some((re) => re.test(err));
    if (err instanceof Error && typeof err.stack === 'string') {
        return /[\\/]node_modules[\\/](swagger-client|shred)[\\/]/.test(err.stack);
    }
    return false;
}
export class SwaggerGuard {
    log;
    scrub;
    pending = 0;
    trap;
    wrapper;
    constructor(log, scrub) {
        this.log = log;
        this.scrub = scrub;
    }
    /** Wraps a connect() promise: the guard stays up until it settles, whenever that is. */
    around(start) {
        this.acquire();
        let p;
        try {
            p = Promise.resolve(start());
        }
        catch (err) {
            this.release();
            return Promise.reject(err);
        }
        p.then(() => this.release(), () => this.release());
        return p;
    }
    get active() { return this.pending > 0; }
    acquire() {
        if (this.pending++ > 0)
            return;
        const trap = (err) => {
            if (isSwaggerFailure(err)) {
                this.log.debug({ failure: this.scrub(typeof err === 'string' ? err : String(err.message)) }, 'ari-client: swallowed swagger-client exception while loading the api-docs');
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
            fn: (...args) => {
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
    release() {
        if (--this.pending > 0)
            return;
        this.pending = 0;
        if (this.trap)
            process.off('uncaughtException', this.trap);
        this.trap = undefined;
        const w = this.wrapper;
        this.wrapper = undefined;
        if (w) {
            w.active = false;
            // Someone wrapped console.log after us: leave our (now pass-through) wrapper in their chain.
            if (console.log === w.fn)
                console.log = w.previous;
        }
    }
}
//# sourceMappingURL=swagger-guard.js.map