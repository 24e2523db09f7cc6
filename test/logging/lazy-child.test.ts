// Fastify's per-request logger made only on use (internal/logging/lazy-child.ts), with a real pino logger and a real
// Fastify instance: what a request logs is exactly what the default per-request child would have written.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import Fastify from 'fastify';
import { pino, type Logger } from 'pino';
import { lazyChildLoggerFactory } from '../../internal/logging/lazy-child.js';

function capture(level = 'info') {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString('utf8').split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  const logger = pino({ level, redact: { paths: ['authorization', '*.authorization'], censor: '[redacted]' } }, sink);
  let children = 0;
  const child = logger.child.bind(logger);
  logger.child = ((b: pino.Bindings, o?: pino.ChildLoggerOptions) => {
    children++;
    return child(b, o);
  }) as unknown as Logger['child'];
  return { logger, lines, children: () => children };
}

async function appWith(logger: Logger) {
  const app = Fastify({ loggerInstance: logger, disableRequestLogging: true, childLoggerFactory: lazyChildLoggerFactory });
  app.get('/quiet', async (req) => {
    req.log.debug('not at this level');
    return { ok: true };
  });
  app.get('/loud', async (req) => {
    req.log.warn({ authorization: 'Bearer secret-token', detail: 1 }, 'something to say');
    return { level: req.log.level, debugOn: req.log.isLevelEnabled('debug') };
  });
  await app.ready();
  return app;
}

describe('lazy per-request logger', () => {
  it('makes no pino child for a request that logs nothing, nor for a level that is off', async () => {
    const c = capture('info');
    const app = await appWith(c.logger);
    const before = c.children(); // Fastify's own, at start-up
    try {
      for (let i = 0; i < 5; i++) assert.equal((await app.inject({ url: '/quiet' })).statusCode, 200);
      assert.equal(c.children() - before, 0);
      assert.deepEqual(c.lines, []);
    } finally {
      await app.close();
    }
  });

  it('logs through a child with the request id, redaction applied, as the default factory would', async () => {
    const c = capture('info');
    const app = await appWith(c.logger);
    const before = c.children();
    try {
      const res = await app.inject({ url: '/loud' });
      assert.deepEqual(res.json(), { level: 'info', debugOn: false });
      assert.equal(c.children() - before, 1);
      assert.equal(c.lines.length, 1);
      const line = c.lines[0]!;
      assert.equal(line['msg'], 'something to say');
      assert.equal(line['level'], 40);
      assert.equal(line['detail'], 1);
      assert.equal(line['authorization'], '[redacted]');
      assert.match(String(line['reqId']), /^req-/);
      assert.ok(!JSON.stringify(c.lines).includes('secret-token'));
    } finally {
      await app.close();
    }
  });

  it('follows the parent at debug level', async () => {
    const c = capture('debug');
    const app = await appWith(c.logger);
    try {
      await app.inject({ url: '/quiet' });
      assert.equal(c.lines.length, 1);
      assert.equal(c.lines[0]!['msg'], 'not at this level');
      assert.match(String(c.lines[0]!['reqId']), /^req-/);
    } finally {
      await app.close();
    }
  });
});
