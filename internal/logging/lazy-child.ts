import type { FastifyBaseLogger } from 'fastify';
import type { Bindings, ChildLoggerOptions, Logger } from 'pino';

type Level = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';

/**
 * Fastify's per-request logger, made only when the request logs something. Fastify makes a pino child for every
 * request, and with redaction configured each child runs the redactor over its bindings: 4-5 % of the event loop's
 * time under a stream of HEADs, for loggers that nearly never log (request lines are off; failures are rare).
 */
class LazyChild {
  private made: Logger | undefined;

  constructor(
    private readonly parent: Logger,
    private readonly own: Bindings,
    private readonly opts: ChildLoggerOptions,
  ) {}

  private real(): Logger {
    return (this.made ??= this.parent.child(this.own, this.opts));
  }

  private log(level: Level, args: unknown[]): void {
    // A level the parent does not log is dropped without making the child (unless this child has a level of its own).
    if (!this.made && this.opts.level === undefined && !this.parent.isLevelEnabled(level)) return;
    (this.real()[level] as (...a: unknown[]) => void)(...args);
  }

  fatal(...args: unknown[]): void {
    this.log('fatal', args);
  }
  error(...args: unknown[]): void {
    this.log('error', args);
  }
  warn(...args: unknown[]): void {
    this.log('warn', args);
  }
  info(...args: unknown[]): void {
    this.log('info', args);
  }
  debug(...args: unknown[]): void {
    this.log('debug', args);
  }
  trace(...args: unknown[]): void {
    this.log('trace', args);
  }
  silent(): void {}

  child(bindings: Bindings, opts?: ChildLoggerOptions): Logger {
    return this.real().child(bindings, opts);
  }
  isLevelEnabled(level: string): boolean {
    return this.made || this.opts.level !== undefined ? this.real().isLevelEnabled(level) : this.parent.isLevelEnabled(level);
  }
  get level(): string {
    return this.made?.level ?? this.opts.level ?? this.parent.level;
  }
  set level(level: string) {
    this.real().level = level;
  }
  bindings(): Bindings {
    return { ...this.parent.bindings(), ...this.own };
  }
}

/** For Fastify's `childLoggerFactory` option. */
export function lazyChildLoggerFactory(logger: FastifyBaseLogger, bindings: Bindings, opts: ChildLoggerOptions): FastifyBaseLogger {
  return new LazyChild(logger as Logger, bindings, opts) as unknown as FastifyBaseLogger;
}
