// A small AMQP 1.0 broker on rhea that the real @azure/service-bus client accepts (test-infrastructure.md §4 and its
// appendix), in-process, on 127.0.0.1. It adds what the Service Bus tests need: topics with subscriptions, peek-lock
// with settlement by AMQP disposition and by `$management` (update-disposition, renew-lock), dead-letter queues,
// batch unpacking, and stop()/start() on the same port to play a broker that goes down and comes back.
import type { Socket, Server } from 'node:net';
import rheaModule from 'rhea';
import type { Connection, Delivery, EventContext, Message, Receiver, Sender } from 'rhea';
import { DEAD_LETTER_SUFFIX, EntityStore, type Entry, type Outcome } from './mini-servicebus-store.js';
import { handleManagement, stripBrokerAnnotations, view, type ArrivedMessage } from './mini-servicebus-mgmt.js';

export type { ArrivedMessage };

// rhea's typings name its exports but the CommonJS module is a Container instance: use it as one.
const rhea = rheaModule as unknown as typeof import('rhea');

/** message_format of a Service Bus batch: each data section is one encoded message. */
const BATCH_FORMAT = 0x80013700;
const isManagement = (a: string | undefined) => a === '$cbs' || a === '$management' || (a ?? '').endsWith('/$management');


export interface MiniServiceBusOptions {
  /** Peek-lock duration (Service Bus's LockDuration); short values exercise lock renewal. Default 60 s. */
  lockDurationMs?: number;
}

/** Byte order of a .NET GUID (the SDK reorders delivery tags into lock tokens the same way): an involution. */
function reorderGuid(b: Buffer): Buffer {
  return Buffer.from([b[3]!, b[2]!, b[1]!, b[0]!, b[5]!, b[4]!, b[7]!, b[6]!, ...b.subarray(8)]);
}

export class MiniServiceBus {
  readonly store: EntityStore;
  private readonly container = rhea.create_container({ id: 'mini-servicebus' });
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  private readonly consumers = new Map<string, Set<Sender>>();
  private readonly replySenders = new Map<string, Sender>();
  private arrivalWaiters: Array<() => void> = [];
  private readonly credits = new Map<string, number>();
  port = 0;

  constructor(opts: MiniServiceBusOptions = {}) {
    this.store = new EntityStore(opts.lockDurationMs ?? 60_000);
    this.store.onAvailable = (address) => this.pump(address);
    this.store.onArrival = () => {
      for (const w of this.arrivalWaiters.splice(0)) w();
    };
    this.wire();
  }

  get connectionString(): string {
    return `Endpoint=sb://127.0.0.1:${this.port}/;SharedAccessKeyName=x;SharedAccessKey=y;UseDevelopmentEmulator=true`;
  }

  /** Listens on a free port the first time, on the same port afterwards. */
  async start(): Promise<void> {
    if (this.server) return;
    const server = this.container.listen({ host: '127.0.0.1', port: this.port }) as unknown as Server;
    server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.once('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('listening', resolve);
      server.once('error', reject);
    });
    this.port = (server.address() as { port: number }).port;
    this.server = server;
  }

  /** Goes down hard: no new connections, every open one cut. Entities and messages are kept for start(). */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = null;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    // With an error, so rhea sees the disconnect (a plain destroy() emits no 'end' and leaves its heartbeat timer).
    for (const s of this.sockets) s.destroy(new Error('mini Service Bus stopped'));
    await closed;
    this.consumers.clear();
    this.replySenders.clear();
  }

  async close(): Promise<void> {
    await this.stop();
    this.store.clear();
  }

  /** The most credit a receiver ever granted on `address` (how many messages one receive call asked for). */
  maxCredit(address: string): number {
    return this.credits.get(address.toLowerCase()) ?? 0;
  }

  /** Open client connections (a closed client leaves none). */
  get connections(): number {
    return this.sockets.size;
  }

  createSubscription(topic: string, subscription: string): void {
    this.store.createSubscription(topic, subscription);
  }

  /** Everything that arrived on `address` (a queue, a topic, `<topic>/Subscriptions/<s>`, `…/$DeadLetterQueue`). */
  messages(address: string): ArrivedMessage[] {
    return this.store.entity(address).history.map(view);
  }

  /** Messages completed (settled as done) on `address`. */
  completed(address: string): ArrivedMessage[] {
    return this.store.entity(address).completed.map(view);
  }

  /** Messages waiting on `address` and messages locked by a receiver. */
  depth(address: string): { available: number; locked: number } {
    return { available: this.store.entity(address).available.length, locked: this.store.lockedCount(address) };
  }

  deadLetters(address: string): ArrivedMessage[] {
    return this.messages(`${address}${DEAD_LETTER_SUFFIX}`);
  }

  /** Waits until at least `n` messages arrived on `address`; fails after `timeoutMs`. */
  async waitFor(address: string, n: number, timeoutMs = 20_000): Promise<ArrivedMessage[]> {
    const end = Date.now() + timeoutMs;
    while (this.store.entity(address).history.length < n) {
      const left = end - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${n} message(s) on ${address}; got ${this.store.entity(address).history.length}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 500));
        this.arrivalWaiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.messages(address);
  }

  /** Puts a message on `address` as if a client had sent it (e.g. a poison body). */
  inject(address: string, m: { body: Buffer | string; messageId?: string; applicationProperties?: Record<string, unknown> }): void {
    const body = rhea.message.data_section(Buffer.isBuffer(m.body) ? m.body : Buffer.from(m.body));
    this.store.enqueue(address, { message_id: m.messageId, body, application_properties: m.applicationProperties });
  }

  private wire(): void {
    const c = this.container;
    c.on('receiver_open', (ctx: EventContext) => {
      const r = ctx.receiver!;
      const addr = (r as unknown as { remote: { attach: { target?: { address?: string } } } }).remote.attach.target?.address;
      r.set_target({ address: addr as string });
      (r as unknown as { local: { attach: { max_message_size: number } } }).local.attach.max_message_size = 262_144;
      r.open();
    });
    c.on('sender_open', (ctx: EventContext) => this.senderOpened(ctx.sender!));
    c.on('sendable', (ctx: EventContext) => this.pumpFor(ctx.sender!));
    c.on('sender_flow', (ctx: EventContext) => {
      const entity = (ctx.sender as unknown as { __entity?: string }).__entity;
      const credit = (ctx.sender as unknown as { credit: number }).credit;
      if (entity) this.credits.set(entity.toLowerCase(), Math.max(this.credits.get(entity.toLowerCase()) ?? 0, credit));
    });
    c.on('sender_draining', (ctx: EventContext) => {
      // Nothing more to give: tell the client so its receiveMessages() returns instead of timing out the drain.
      this.pumpFor(ctx.sender!);
      if (ctx.sender!.has_credit()) ctx.sender!.set_drained(true);
    });
    c.on('sender_close', (ctx: EventContext) => this.forget(ctx.sender!));
    c.on('disconnected', (ctx: EventContext) => this.forgetConnection(ctx.connection));
    c.on('message', (ctx: EventContext) => this.received(ctx));
    // Settlement by disposition on the link the message went out on.
    c.on('accepted', (ctx: EventContext) => this.settledByLink(ctx.delivery!, { kind: 'complete' }));
    c.on('released', (ctx: EventContext) => this.settledByLink(ctx.delivery!, { kind: 'abandon' }));
    c.on('modified', (ctx: EventContext) => this.settledByLink(ctx.delivery!, { kind: 'abandon' }));
    c.on('rejected', (ctx: EventContext) => {
      const info = ((ctx.delivery!.remote_state as { error?: { info?: Record<string, string> } } | undefined)?.error?.info ?? {}) as Record<string, string>;
      this.settledByLink(ctx.delivery!, { kind: 'deadletter', reason: info['DeadLetterReason'], description: info['DeadLetterErrorDescription'] });
    });
    c.on('error', () => {});
    c.on('connection_error', () => {});
  }

  private senderOpened(s: Sender): void {
    const remote = (s as unknown as { remote: { attach: { source?: { address?: string }; target?: { address?: string }; snd_settle_mode?: number; rcv_settle_mode?: number } } }).remote.attach;
    const src = remote.source?.address;
    s.set_source({ address: src as string });
    const local = (s as unknown as { local: { attach: { snd_settle_mode?: number; rcv_settle_mode?: number } } }).local.attach;
    local.snd_settle_mode = remote.snd_settle_mode ?? 0;
    local.rcv_settle_mode = remote.rcv_settle_mode ?? 0;
    s.open();
    if (isManagement(src)) {
      this.replySenders.set(s.name, s);
      if (remote.target?.address) this.replySenders.set(remote.target.address, s);
      return;
    }
    const k = src!.toLowerCase();
    if (!this.consumers.has(k)) this.consumers.set(k, new Set());
    this.consumers.get(k)!.add(s);
    (s as unknown as { __entity: string }).__entity = src!;
  }

  private forget(s: Sender): void {
    for (const set of this.consumers.values()) set.delete(s);
  }

  private forgetConnection(conn: Connection): void {
    for (const set of this.consumers.values()) for (const s of set) if (s.connection === conn) set.delete(s);
    for (const [k, s] of this.replySenders) if (s.connection === conn) this.replySenders.delete(k);
  }

  private pumpFor(s: Sender): void {
    const entity = (s as unknown as { __entity?: string }).__entity;
    if (entity) this.pump(entity);
  }

  /** Hands available messages to the entity's receivers while they have credit. */
  private pump(address: string): void {
    for (const s of this.consumers.get(address.toLowerCase()) ?? []) {
      while (s.sendable()) {
        const entry = this.store.take(address);
        if (!entry) return;
        this.deliver(address, s, entry);
      }
    }
  }

  private deliver(address: string, s: Sender, entry: Entry): void {
    const receiveAndDelete = (s as unknown as { local: { attach: { snd_settle_mode?: number } } }).local.attach.snd_settle_mode === 1;
    const annotations: Record<string, unknown> = {
      ...(entry.msg.message_annotations ?? {}),
      'x-opt-enqueued-time': entry.enqueuedAt,
      'x-opt-sequence-number': rhea.types.wrap_long(entry.seq),
    };
    if (receiveAndDelete) {
      s.send({ ...entry.msg, delivery_count: entry.deliveryCount, message_annotations: annotations });
      this.store.entity(address).completed.push(entry.msg);
      return;
    }
    const { token, until } = this.store.lock(address, entry);
    annotations['x-opt-locked-until'] = until;
    const tag = reorderGuid(rhea.string_to_uuid(token));
    const d = s.send({ ...entry.msg, delivery_count: entry.deliveryCount, message_annotations: annotations }, tag);
    (d as unknown as { __lock: string }).__lock = token;
  }

  private settledByLink(d: Delivery, outcome: Outcome): void {
    const token = (d as unknown as { __lock?: string }).__lock;
    if (token) this.store.settle(token, outcome);
    // Settle with an outcome that carries no error: the SDK treats an error in the echoed state as a failed settle.
    const m = rhea.message as unknown as Record<'accepted' | 'released' | 'rejected', () => { described(): unknown }>;
    d.update(true, (outcome.kind === 'complete' ? m.accepted() : outcome.kind === 'abandon' ? m.released() : m.rejected()).described());
  }

  private received(ctx: EventContext): void {
    const r = ctx.receiver as Receiver;
    const addr = r.target.address!;
    if (isManagement(addr)) {
      const m = ctx.message!;
      handleManagement(this.store, addr, m, (reply) => this.replySenders.get(m.reply_to ?? '')?.send(reply));
    } else if ((ctx as unknown as { format?: number }).format === BATCH_FORMAT) {
      const outer = rhea.message.decode(ctx.message as unknown as Buffer);
      const body = outer.body as { content: Buffer | Buffer[]; multiple?: boolean };
      const parts = body.multiple ? (body.content as Buffer[]) : [body.content as Buffer];
      for (const p of parts) this.store.enqueue(addr, stripBrokerAnnotations(rhea.message.decode(p) as unknown as Message));
    } else {
      this.store.enqueue(addr, stripBrokerAnnotations(ctx.message!));
    }
    ctx.delivery!.accept();
  }
}

