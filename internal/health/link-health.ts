import type { HealthCheck } from './check.js';

/**
 * /health state of one broker link (a Service Bus sender or receiver, an SNS topic, an SQS queue; decisions.md
 * "/info and /health"): DOWN "connecting to <entity>" until the link first works, UP from then on, DOWN with the error
 * text after a failed send or receive, UP again at the next success. No management API call on /health: the state is
 * what the last real operation saw.
 */
export class LinkHealth implements HealthCheck {
  private issue: string | null;

  constructor(
    readonly name: string,
    entity: string,
    /** Removes key material from an error text before it is shown (a connection string's key, say). */
    private readonly scrub: (text: string) => string = (text) => text,
  ) {
    this.issue = `connecting to ${entity}`;
  }

  get isUp(): boolean {
    return this.issue === null;
  }

  up(): void {
    this.issue = null;
  }

  down(err: unknown): void {
    this.issue = this.scrub(errorText(err) || 'unknown broker error');
  }

  readonly check = async (): Promise<void> => {
    if (this.issue !== null) throw new Error(this.issue);
  };
}

/** The most telling text of an error; a failed connect can be an AggregateError with an empty message. */
export function errorText(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  if (err.message) return err.message;
  const inner = (err as Error & { errors?: unknown[] }).errors;
  if (Array.isArray(inner) && inner.length > 0) return inner.map(errorText).join('; ');
  return err.name;
}
