// The entity store of the mini Service Bus broker (test/helpers/mini-servicebus.ts): queues, topics with
// subscriptions, peek-lock with expiring locks, and dead-letter sub-queues. Pure bookkeeping, no networking.
import { randomUUID } from 'node:crypto';
import type { Message } from 'rhea';

/** One message in an entity, with the broker-side state Service Bus keeps for it. */
export interface Entry {
  msg: Message;
  seq: number;
  deliveryCount: number;
  enqueuedAt: Date;
}

interface Lock {
  entity: string;
  entry: Entry;
  until: number;
  timer: NodeJS.Timeout;
}

class Entity {
  readonly available: Entry[] = [];
  /** Everything that ever arrived here, in order (tests read it). */
  readonly history: Message[] = [];
  readonly completed: Message[] = [];
}

export type Outcome = { kind: 'complete' } | { kind: 'abandon' } | { kind: 'deadletter'; reason?: string; description?: string };

export const DEAD_LETTER_SUFFIX = '/$DeadLetterQueue';
const key = (address: string) => address.toLowerCase();

export class EntityStore {
  private readonly entities = new Map<string, Entity>();
  private readonly subscriptions = new Map<string, Set<string>>();
  private readonly locks = new Map<string, Lock>();
  private seq = 1;
  /** Called whenever an entity gains an available message (the broker pumps it to receivers). */
  onAvailable: (address: string) => void = () => {};
  /** Called whenever anything arrives anywhere (tests waiting on history). */
  onArrival: () => void = () => {};

  constructor(private readonly lockDurationMs: number) {}

  entity(address: string): Entity {
    const k = key(address);
    let e = this.entities.get(k);
    if (!e) this.entities.set(k, (e = new Entity()));
    return e;
  }

  createSubscription(topic: string, subscription: string): void {
    const k = key(topic);
    if (!this.subscriptions.has(k)) this.subscriptions.set(k, new Set());
    this.subscriptions.get(k)!.add(`${topic}/Subscriptions/${subscription}`);
  }

  /** A message sent to `address`: a topic copies it to every subscription, anything else is a queue. */
  enqueue(address: string, msg: Message): void {
    if (msg.message_id === undefined || msg.message_id === null || msg.message_id === '') msg.message_id = randomUUID();
    const subs = this.subscriptions.get(key(address));
    if (subs) {
      this.entity(address).history.push(msg);
      for (const sub of subs) this.append(sub, structuredCloneMessage(msg), 0);
    } else {
      this.append(address, msg, 0);
    }
    this.onArrival();
  }

  private append(address: string, msg: Message, deliveryCount: number, front = false): void {
    const e = this.entity(address);
    const entry: Entry = { msg, seq: this.seq++, deliveryCount, enqueuedAt: new Date() };
    if (front) e.available.unshift(entry);
    else {
      e.available.push(entry);
      e.history.push(msg);
    }
    this.onAvailable(address);
  }

  take(address: string): Entry | undefined {
    return this.entity(address).available.shift();
  }

  /** Locks a delivered entry; when the lock runs out the message becomes available again (delivery count + 1). */
  lock(address: string, entry: Entry): { token: string; until: Date } {
    const token = randomUUID();
    const until = Date.now() + this.lockDurationMs;
    const timer = setTimeout(() => this.expire(token), this.lockDurationMs);
    timer.unref();
    this.locks.set(token, { entity: address, entry, until, timer });
    return { token, until: new Date(until) };
  }

  private expire(token: string): void {
    const l = this.locks.get(token);
    if (!l) return;
    this.locks.delete(token);
    l.entry.deliveryCount++;
    this.entity(l.entity).available.unshift(l.entry);
    this.onAvailable(l.entity);
  }

  renew(token: string): Date | undefined {
    const l = this.locks.get(token);
    if (!l) return undefined;
    clearTimeout(l.timer);
    l.until = Date.now() + this.lockDurationMs;
    l.timer = setTimeout(() => this.expire(token), this.lockDurationMs);
    l.timer.unref();
    return new Date(l.until);
  }

  /** Settles a locked message; false when the lock is unknown or expired (lock lost). */
  settle(token: string, outcome: Outcome): boolean {
    const l = this.locks.get(token);
    if (!l) return false;
    clearTimeout(l.timer);
    this.locks.delete(token);
    if (outcome.kind === 'complete') {
      this.entity(l.entity).completed.push(l.entry.msg);
    } else if (outcome.kind === 'abandon') {
      l.entry.deliveryCount++;
      this.entity(l.entity).available.unshift(l.entry);
      this.onAvailable(l.entity);
    } else {
      const msg = structuredCloneMessage(l.entry.msg);
      msg.application_properties = {
        ...(msg.application_properties ?? {}),
        ...(outcome.reason !== undefined ? { DeadLetterReason: outcome.reason } : {}),
        ...(outcome.description !== undefined ? { DeadLetterErrorDescription: outcome.description } : {}),
      };
      this.append(`${l.entity}${DEAD_LETTER_SUFFIX}`, msg, 0);
      this.onArrival();
    }
    return true;
  }

  lockedCount(address: string): number {
    let n = 0;
    for (const l of this.locks.values()) if (key(l.entity) === key(address)) n++;
    return n;
  }

  /** Drops every lock (broker shut down for good). */
  clear(): void {
    for (const l of this.locks.values()) clearTimeout(l.timer);
    this.locks.clear();
  }
}

/** A copy that shares no mutable maps with the original (fan-out copies and dead-letter copies are independent). */
function structuredCloneMessage(m: Message): Message {
  return {
    ...m,
    application_properties: m.application_properties ? { ...m.application_properties } : undefined,
    message_annotations: m.message_annotations ? { ...m.message_annotations } : undefined,
  };
}
