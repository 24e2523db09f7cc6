// The pieces every delivery target shares: metadata encoding, the hashing counter, path checks, the factory.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { errorText, safeEndpoint } from '../../internal/delivery/targets/errors.js';
import { HashingCounter, SizeMismatchError } from '../../internal/delivery/targets/hashing.js';
import { closeTargets, createTarget, createTargets } from '../../internal/delivery/targets/index.js';
import { AzBlobTarget } from '../../internal/delivery/targets/azblob.js';
import { FileTarget } from '../../internal/delivery/targets/file.js';
import { S3Target } from '../../internal/delivery/targets/s3.js';
import { decodeMetadataValue, encodeMetadata, encodeMetadataValue, isMetadataKey } from '../../internal/delivery/targets/metadata.js';
import { assertRelativePath } from '../../internal/delivery/targets/safe-path.js';
import { captureLogger, sha256 } from '../helpers/delivery.js';

const sink = () =>
  new Writable({
    write(_c, _e, done) {
      done();
    },
  });

describe('metadata encoding', () => {
  it('keeps printable ASCII and percent-encodes every other UTF-8 byte and % itself', () => {
    assert.equal(encodeMetadataValue('plain text ~!@#$^&*()[]{}'), 'plain text ~!@#$^&*()[]{}');
    assert.equal(encodeMetadataValue('100%'), '100%25');
    assert.equal(encodeMetadataValue('é'), '%C3%A9');
    assert.equal(encodeMetadataValue('a\tb\nc\r\0'), 'a%09b%0Ac%0D%00');
    assert.equal(encodeMetadataValue('\x7f'), '%7F');
    assert.equal(encodeMetadataValue('日本'), '%E6%97%A5%E6%9C%AC');
    assert.equal(encodeMetadataValue('😀'), '%F0%9F%98%80');
    assert.equal(encodeMetadataValue(''), '');
  });

  it('decodes back to the original text', () => {
    for (const v of ['résumé 100%.txt', 'a\tb\nc', '日本😀', '%%25', 'plain']) assert.equal(decodeMetadataValue(encodeMetadataValue(v)), v);
    assert.equal(decodeMetadataValue('50%zz'), '50%zz', 'a malformed escape is kept');
  });

  it('accepts identifier keys only', () => {
    for (const k of ['a', '_', 'data_stream_id', 'A1_b2', '_9']) assert.ok(isMetadataKey(k), k);
    for (const k of ['', '9lives', 'bad-key', 'dotted.key', 'with space', 'é', 'x\n']) assert.ok(!isMetadataKey(k), k);
  });

  it('skips unusable and case-duplicate keys with a warning naming the key only', () => {
    const logs = captureLogger();
    const out = encodeMetadata({ filename: 'é.txt', 'bad-key': 'secret-value-1', Filename: 'secret-value-2', ok_key: 'v' }, logs.log);
    assert.deepEqual(out, { filename: '%C3%A9.txt', ok_key: 'v' });
    const warned = logs.records().filter((r) => r['level'] === 40);
    assert.deepEqual(
      warned.map((r) => r['metadataKey']),
      ['bad-key', 'Filename'],
    );
    assert.ok(!logs.text().includes('secret-value'), 'values are not logged');
  });
});

describe('hashing counter', () => {
  it('passes the bytes through, counting and hashing them', async () => {
    const counter = new HashingCounter(11);
    const chunks: Buffer[] = [];
    await pipeline(
      Readable.from([Buffer.from('hello '), Buffer.from('world')]),
      counter,
      new Writable({
        write(c: Buffer, _e, done) {
          chunks.push(c);
          done();
        },
      }),
    );
    assert.equal(Buffer.concat(chunks).toString(), 'hello world');
    assert.equal(counter.bytes, 11);
    assert.equal(counter.sha256, sha256('hello world'));
  });

  it('fails when the source is short, or as soon as it sends too much', async () => {
    const short = new HashingCounter(20);
    await assert.rejects(pipeline(Readable.from([Buffer.from('12345')]), short, sink()), (e: unknown) => e instanceof SizeMismatchError && /expected 20 bytes, the source sent 5/.test(e.message));
    assert.ok(short.failure instanceof SizeMismatchError);
    const long = new HashingCounter(3);
    await assert.rejects(pipeline(Readable.from([Buffer.from('12'), Buffer.from('34'), Buffer.from('56')]), long, sink()), /expected 3 bytes, the source sent at least 4/);
    assert.throws(() => long.sha256, /before the stream ended/);
  });

  it('counts without a size limit when none is given', async () => {
    const counter = new HashingCounter();
    await pipeline(Readable.from([Buffer.alloc(1000)]), counter, sink());
    assert.equal(counter.bytes, 1000);
  });
});

describe('path checks', () => {
  it('accepts relative paths inside the root', () => {
    for (const p of ['a.txt', 'a/b/c.txt', './a.txt', 'a/./b', 'a..b/c', '...', 'x/..y']) assert.doesNotThrow(() => assertRelativePath(p), p);
  });
  it('refuses empty, absolute, parent and NUL paths', () => {
    for (const p of ['', '.', './', '/abs', '\\abs', 'C:/x', '../x', 'a/../../b', 'a/..', 'a\\..\\b', 'a\0b']) {
      assert.throws(() => assertRelativePath(p), /refusing delivery path/, JSON.stringify(p));
    }
  });
});

describe('error text', () => {
  it('uses the message, the code or the name and HTTP status, and the inner errors of an AggregateError', () => {
    assert.equal(errorText(new Error('plain')), 'plain');
    assert.equal(errorText(Object.assign(new Error('UnknownError'), { name: 'NotFound', $metadata: { httpStatusCode: 404 } })), 'NotFound (HTTP 404)');
    assert.equal(errorText(Object.assign(new Error('connection refused'), { code: 'ECONNREFUSED' })), 'ECONNREFUSED: connection refused');
    const agg = new AggregateError([Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' })], '');
    assert.equal(errorText(agg), 'connect ECONNREFUSED 127.0.0.1:1');
    assert.equal(errorText('text'), 'text');
  });
  it('shows endpoints without user info or query (a SAS token is a secret)', () => {
    assert.equal(safeEndpoint('http://127.0.0.1:9000/'), 'http://127.0.0.1:9000');
    assert.equal(safeEndpoint('https://user:pw@acct.blob.core.windows.net/c/a%20b.txt?sv=1&sig=SECRET'), 'https://acct.blob.core.windows.net/c/a%20b.txt');
    assert.equal(safeEndpoint('not a url'), '(unparsable endpoint)');
  });
});

describe('target factory', () => {
  it('creates one target per type with its /health name', async () => {
    const { log } = captureLogger();
    const file = await createTarget({ type: 'file', name: 'f', path: 'x' }, log);
    const s3 = await createTarget({ type: 's3', name: 's', bucket_name: 'b' }, log);
    const az = await createTarget({ type: 'az-blob', name: 'a', container_name: 'c', storage_account: 'acct', storage_key: 'a2V5' }, log);
    assert.ok(file instanceof FileTarget);
    assert.ok(s3 instanceof S3Target);
    assert.ok(az instanceof AzBlobTarget);
    assert.deepEqual([file.healthName, s3.healthName, az.healthName], ['File Delivery Target f', 'S3 deliver target s', 'Azure deliver target a']);
    await assert.rejects(createTarget({ type: 'ftp', name: 'x' } as never, log), /Unknown destination type: ftp/);
  });

  it('createTargets creates the file targets’ folders, so their health is UP at once', async () => {
    const base = await mkdtemp(path.join(tmpdir(), 'targets-'));
    try {
      const { log } = captureLogger();
      const targets = await createTargets(
        new Map([
          ['edav', { type: 'file' as const, name: 'edav', path: path.join(base, 'uploads/edav') }],
          ['ehdi', { type: 'file' as const, name: 'ehdi', path: path.join(base, 'uploads/ehdi') }],
          ['s3', { type: 's3' as const, name: 's3', bucket_name: 'b', endpoint: 'http://127.0.0.1:9' }],
        ]),
        log,
      );
      assert.deepEqual([...targets.keys()], ['edav', 'ehdi', 's3']);
      assert.ok((await stat(path.join(base, 'uploads/edav'))).isDirectory());
      await targets.get('edav')!.health();
      await targets.get('ehdi')!.health();
      await closeTargets(targets);
    } finally {
      await rm(base, { recursive: true, force: true });
    }
  });
});
