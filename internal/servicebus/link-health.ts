import type { HealthCheck } from '../health/check.js';
import { scrubSecrets } from './connection-string.js';

/**
 * /health state of one Service Bus link (decisions.md "/info and /health"): DOWN "connecting to <entity>" until the
 * link first opens, UP from then on, DOWN with the error text after a failed send or receive, UP again at the next
 * success. No management API call: the state is what the last real operation saw.
 */
export class LinkHealth implements HealthCheck {
  private issue: string | null;

  constructor(
    readonly name: string,
    entity: string,
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
    this.issue = scrubSecrets(errorText(err) || 'unknown Service Bus error');
  }

  readonly check = async (): Promise<void> => {
    if (this.issue !== null) throw new Error(this.issue);
  };
}

/** The most telling text of an error; a failed connect can be an AggregateError with an empty message. */
function errorText(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  if (err.message) return err.message;
  const inner = (err as Error & { errors?: unknown[] }).errors;
  if (Array.isArray(inner) && inner.length > 0) return inner.map(errorText).join('; ');
  return err.name;
}
