// $cbs / $management handling and message helpers of the mini Service Bus broker (test/helpers/mini-servicebus.ts).
import rheaModule from 'rhea';
import type { Message } from 'rhea';
import type { EntityStore, Outcome } from './mini-servicebus-store.js';

const rhea = rheaModule as unknown as typeof import('rhea');

/** A message as a test sees it. */
export interface ArrivedMessage {
  messageId: string;
  /** The body's bytes as text (data sections) or the AMQP value as JSON. */
  text: string;
  applicationProperties: Record<string, unknown>;
  raw: Message;
}

/**
 * Answers a request on `$cbs` or `<entity>/$management` the way the SDK expects: put-token (always granted),
 * com.microsoft:update-disposition (settles by lock token: completed / abandoned / suspended = dead-letter) and
 * com.microsoft:renew-lock (body `{ expirations: [Date…] }`); 410 lock-lost for an unknown or expired token.
 */
export function handleManagement(store: EntityStore, address: string, m: Message, send: (reply: Message) => void): void {
  const op = m.application_properties?.['operation'] as string | undefined;
  const entity = address.replace(/\/?\$management$/, '');
  const reply = (status: number, body?: unknown, description = 'OK', condition?: string) => {
    send({
      correlation_id: m.message_id,
      application_properties: {
        'status-code': status,
        statusCode: status,
        'status-description': description,
        ...(condition ? { 'error-condition': condition } : {}),
      },
      body,
    });
  };
  const body = (m.body ?? {}) as Record<string, unknown>;
  const tokens = ((body['lock-tokens'] as Buffer[] | undefined) ?? []).map((b) => rhea.uuid_to_string(b));
  if (op === 'put-token') return reply(200);
  if (op === 'com.microsoft:update-disposition') {
    const status = body['disposition-status'];
    const outcome: Outcome =
      status === 'completed'
        ? { kind: 'complete' }
        : status === 'suspended'
          ? { kind: 'deadletter', reason: body['deadletter-reason'] as string | undefined, description: body['deadletter-description'] as string | undefined }
          : { kind: 'abandon' };
    const lost = tokens.filter((t) => !store.settle(t, outcome));
    if (lost.length) return reply(410, undefined, `lock lost on ${entity}`, 'com.microsoft:message-lock-lost');
    return reply(200);
  }
  if (op === 'com.microsoft:renew-lock') {
    const expirations = tokens.map((t) => store.renew(t));
    if (expirations.some((e) => e === undefined)) return reply(410, undefined, `lock lost on ${entity}`, 'com.microsoft:message-lock-lost');
    return reply(200, { expirations });
  }
  return reply(501, {}, `not implemented: ${op}`);
}

/** Annotations the broker owns are set at delivery, never taken from the sender. */
export function stripBrokerAnnotations(m: Message): Message {
  if (!m.message_annotations) return m;
  const a = { ...m.message_annotations };
  for (const k of ['x-opt-enqueued-time', 'x-opt-sequence-number', 'x-opt-locked-until']) delete a[k];
  return { ...m, message_annotations: a };
}

export function view(m: Message): ArrivedMessage {
  const body = m.body as { typecode?: number; content?: unknown; multiple?: boolean } | unknown;
  let text: string;
  if (body && typeof body === 'object' && 'typecode' in body && (body as { typecode: number }).typecode === 0x75) {
    const c = (body as unknown as { content: Buffer | Buffer[] }).content;
    text = Array.isArray(c) ? Buffer.concat(c).toString('utf8') : Buffer.from(c).toString('utf8');
  } else {
    text = JSON.stringify(body);
  }
  return { messageId: String(m.message_id ?? ''), text, applicationProperties: { ...(m.application_properties ?? {}) }, raw: m };
}
