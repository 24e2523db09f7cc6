// The s3 delivery target against a real S3-compatible server (s3rver on loopback).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { GetObjectCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { Readable } from 'node:stream';
import { S3Target } from '../../internal/delivery/targets/s3.js';
import { captureLogger, digestOf, failingStream, generatedStream, MiB, requestFor, sha256 } from '../helpers/delivery.js';
import { S3RVER_ACCESS_KEY, S3RVER_SECRET_KEY, startS3rver, type S3rver } from '../helpers/s3.js';

const BUCKET = 'delivery-bucket';

describe('s3 delivery target', () => {
  let s3: S3rver;
  let client: S3Client;
  const logs = captureLogger();
  let target: S3Target;

  before(async () => {
    s3 = await startS3rver();
    await s3.createBucket(BUCKET);
    client = s3.client();
    target = new S3Target(
      { name: 'edav-s3', bucket_name: BUCKET, endpoint: s3.endpoint, access_key_id: S3RVER_ACCESS_KEY, secret_access_key: S3RVER_SECRET_KEY },
      logs.log,
    );
  });
  after(async () => {
    await target?.close();
    client?.destroy();
    await s3?.cleanup();
  });

  const readBack = async (key: string) => {
    const res = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
    return digestOf(res.Body as Readable);
  };
  const head = (key: string) => client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }));

  it('delivers a small file: content, size, path-style location, sha256', async () => {
    const data = 'hello, s3 delivery\n';
    const res = await target.deliver(requestFor('2024/05/01/small.txt', data));
    assert.equal(res.location, `${s3.endpoint}/${BUCKET}/2024/05/01/small.txt`);
    assert.equal(res.sha256, sha256(data));
    assert.equal(res.bytes, Buffer.byteLength(data));
    assert.deepEqual(await readBack('2024/05/01/small.txt'), { sha256: sha256(data), bytes: Buffer.byteLength(data) });
    assert.equal((await head('2024/05/01/small.txt')).ContentLength, Buffer.byteLength(data));
  });

  it('delivers an empty file', async () => {
    const res = await target.deliver(requestFor('empty.bin', Buffer.alloc(0)));
    assert.equal(res.bytes, 0);
    assert.equal(res.sha256, sha256(''));
    assert.equal((await head('empty.bin')).ContentLength, 0);
  });

  it('delivers a 20 MiB file as a multipart upload, streamed', async () => {
    const size = 20 * MiB;
    const gen = generatedStream(size);
    const before = s3.requests().length;
    const res = await target.deliver({ path: 'big/twenty.bin', size, body: gen.stream, metadata: { filename: 'twenty.bin' } });
    assert.equal(res.sha256, gen.digest());
    assert.equal(res.bytes, size);
    assert.deepEqual(await readBack('big/twenty.bin'), { sha256: gen.digest(), bytes: size });
    const used = s3.requests().slice(before);
    assert.ok(used.some((r) => r.startsWith('POST') && r.includes('uploads')), `CreateMultipartUpload used: ${used.join(', ')}`);
    assert.equal(used.filter((r) => r.startsWith('PUT') && r.includes('partNumber=')).length, 3, '20 MiB in 8 MiB parts');
    assert.equal((await head('big/twenty.bin')).Metadata?.['filename'], 'twenty.bin');
  });

  it('stores the manifest as encoded metadata and skips keys S3 cannot carry', async () => {
    const before = logs.records().length;
    const manifest = {
      data_stream_id: 'dextesting',
      filename: 'résumé 100%.txt',
      note: 'line1\nline2',
      'bad-key': 'x',
      '9lives': 'y',
      _ok: '',
    };
    await target.deliver(requestFor('meta/m.txt', 'metadata', manifest));
    const md = (await head('meta/m.txt')).Metadata ?? {};
    assert.equal(md['data_stream_id'], 'dextesting');
    assert.equal(md['filename'], 'r%C3%A9sum%C3%A9 100%25.txt');
    assert.equal(md['note'], 'line1%0Aline2');
    assert.equal(md['bad-key'], undefined);
    assert.equal(md['9lives'], undefined);
    const skipped = logs
      .records()
      .slice(before)
      .filter((r) => r['level'] === 40 && typeof r['metadataKey'] === 'string')
      .map((r) => r['metadataKey']);
    assert.deepEqual(skipped.sort(), ['9lives', 'bad-key']);
  });

  it('overwrites an existing object', async () => {
    await target.deliver(requestFor('over/write.txt', 'first version, longer'));
    const res = await target.deliver(requestFor('over/write.txt', 'second'));
    assert.deepEqual(await readBack('over/write.txt'), { sha256: sha256('second'), bytes: 6 });
    assert.equal(res.sha256, sha256('second'));
  });

  it('refuses paths that would leave the bucket root', async () => {
    for (const p of ['../x', '/abs', 'a/../../b', 'a\0b', '']) {
      await assert.rejects(target.deliver(requestFor(p, 'x')), /refusing delivery path/, `path ${JSON.stringify(p)}`);
    }
  });

  it('fails when the source sends fewer or more bytes than the upload size, or breaks', async () => {
    await assert.rejects(target.deliver(requestFor('size/short.txt', '12345', {}, 10)), /failed to upload file to delivery-bucket size\/short\.txt: size mismatch: expected 10 bytes, the source sent 5/);
    await assert.rejects(target.deliver(requestFor('size/long.txt', '1234567890', {}, 4)), /size mismatch: expected 4 bytes/);
    await assert.rejects(target.deliver({ path: 'size/broken.bin', size: 20 * MiB, body: failingStream(9 * MiB), metadata: {} }), /source broke/);
    await assert.rejects(head('size/short.txt'));
    // A failed delivery leaves what was there before untouched.
    await target.deliver(requestFor('size/kept.txt', 'the good copy'));
    await assert.rejects(target.deliver({ path: 'size/kept.txt', size: 20 * MiB, body: failingStream(9 * MiB), metadata: {} }), /source broke/);
    assert.deepEqual(await readBack('size/kept.txt'), { sha256: sha256('the good copy'), bytes: 13 });
    await assert.rejects(head('size/long.txt'));
    await assert.rejects(head('size/broken.bin'));
  });

  it('reports health UP, and DOWN for a missing bucket', async () => {
    await target.health();
    const missing = new S3Target(
      { name: 'nobucket', bucket_name: 'no-such-bucket', endpoint: s3.endpoint, access_key_id: S3RVER_ACCESS_KEY, secret_access_key: S3RVER_SECRET_KEY },
      logs.log,
    );
    await assert.rejects(missing.health(), /bucket no-such-bucket: .*404/);
    await missing.close();
    assert.equal(target.healthName, 'S3 deliver target edav-s3');
  });

  it('gives a clear error while the server is down and works again after it restarts', async () => {
    await s3.stop();
    await assert.rejects(target.deliver(requestFor('down/while-down.txt', 'x')), /failed to upload file to delivery-bucket down\/while-down\.txt: .*ECONNREFUSED/);
    await assert.rejects(target.health(), /bucket delivery-bucket: .*ECONNREFUSED/);
    await s3.restart();
    await target.health();
    const res = await target.deliver(requestFor('down/after-restart.txt', 'back again'));
    assert.deepEqual(await readBack('down/after-restart.txt'), { sha256: res.sha256, bytes: 10 });
  });

  it('never logs the credentials, not even when they are refused', async () => {
    const secret = 'Sup3r-S3cret-Value-For-Logs';
    const wrong = new S3Target({ name: 'wrong-key', bucket_name: BUCKET, endpoint: s3.endpoint, access_key_id: 'AKIA-TEST-ID', secret_access_key: secret }, logs.log);
    const err = await wrong.deliver(requestFor('denied.txt', 'x')).then(
      () => assert.fail('a wrong key must be refused'),
      (e: Error) => e,
    );
    assert.match(err.message, /failed to upload file to delivery-bucket denied\.txt: /);
    await assert.rejects(wrong.health());
    await wrong.close();
    assert.ok(!err.message.includes(secret));
    assert.ok(!logs.text().includes(secret), 'no secret key in the logs');
    assert.ok(!/secret_access_key|secretAccessKey/.test(logs.text()));
  });

  it('gives the AWS virtual-hosted location when no endpoint is set', async () => {
    const aws = new S3Target({ name: 'aws', bucket_name: 'my-bucket', region: 'eu-west-2' }, logs.log);
    assert.equal(aws.location('a/b.txt'), 'https://my-bucket.s3.eu-west-2.amazonaws.com/a/b.txt');
    await aws.close();
    const dflt = new S3Target({ name: 'aws', bucket_name: 'my-bucket' }, logs.log);
    assert.equal(dflt.location('a/b.txt'), 'https://my-bucket.s3.us-east-1.amazonaws.com/a/b.txt');
    await dflt.close();
  });
});
