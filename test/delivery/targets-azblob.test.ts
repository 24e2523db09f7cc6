// The az-blob delivery target against a real blob emulator (azurite on loopback).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { BlobServiceClient } from '@azure/storage-blob';
import type { Readable } from 'node:stream';
import { AzBlobTarget, azureServiceClient } from '../../internal/delivery/targets/azblob.js';
import { AZURITE_ACCOUNT, AZURITE_KEY, startAzurite, type Azurite } from '../helpers/azurite.js';
import { captureLogger, digestOf, failingStream, generatedStream, MiB, requestFor, sha256 } from '../helpers/delivery.js';

const CONTAINER = 'delivered';

describe('az-blob delivery target', () => {
  let az: Azurite;
  let service: BlobServiceClient;
  const logs = captureLogger();
  let target: AzBlobTarget;

  before(async () => {
    az = await startAzurite();
    service = az.serviceClient();
    target = new AzBlobTarget(
      { name: 'edav-blob', container_name: CONTAINER, storage_account: AZURITE_ACCOUNT, storage_key: AZURITE_KEY, endpoint: az.endpoint },
      logs.log,
    );
  });
  after(async () => {
    await az?.cleanup();
  });

  const blob = (name: string) => service.getContainerClient(CONTAINER).getBlockBlobClient(name);
  const readBack = async (name: string) => digestOf((await blob(name).download()).readableStreamBody as Readable);

  it('creates the missing container on first use and delivers a small file', async () => {
    assert.equal(await service.getContainerClient(CONTAINER).exists(), false);
    const data = 'hello, blob delivery\n';
    const res = await target.deliver(requestFor('2024/05/01/small file.txt', data));
    assert.equal(await service.getContainerClient(CONTAINER).exists(), true);
    assert.equal(res.location, `${az.endpoint}/${CONTAINER}/2024/05/01/small%20file.txt`);
    assert.equal(res.sha256, sha256(data));
    assert.equal(res.bytes, Buffer.byteLength(data));
    assert.deepEqual(await readBack('2024/05/01/small file.txt'), { sha256: sha256(data), bytes: Buffer.byteLength(data) });
    assert.equal((await blob('2024/05/01/small file.txt').getProperties()).contentLength, Buffer.byteLength(data));
  });

  it('delivers an empty file', async () => {
    const res = await target.deliver(requestFor('empty.bin', Buffer.alloc(0)));
    assert.equal(res.sha256, sha256(''));
    assert.equal((await blob('empty.bin').getProperties()).contentLength, 0);
  });

  it('delivers a 20 MiB file in several blocks, streamed', async () => {
    const size = 20 * MiB;
    const gen = generatedStream(size);
    const res = await target.deliver({ path: 'big/twenty.bin', size, body: gen.stream, metadata: { filename: 'twenty.bin' } });
    assert.equal(res.sha256, gen.digest());
    assert.equal(res.bytes, size);
    assert.deepEqual(await readBack('big/twenty.bin'), { sha256: gen.digest(), bytes: size });
    const blocks = await blob('big/twenty.bin').getBlockList('committed');
    assert.equal(blocks.committedBlocks?.length, 3, '20 MiB in 8 MiB blocks');
  });

  it('stores the manifest as encoded metadata and skips keys Azure cannot carry', async () => {
    const before = logs.records().length;
    const manifest = { data_stream_id: 'dextesting', filename: 'résumé 100%.txt', note: 'tab\there', 'bad-key': 'x', 'dotted.key': 'y', _empty: '' };
    await target.deliver(requestFor('meta/m.txt', 'metadata', manifest));
    const md = (await blob('meta/m.txt').getProperties()).metadata ?? {};
    assert.equal(md['data_stream_id'], 'dextesting');
    assert.equal(md['filename'], 'r%C3%A9sum%C3%A9 100%25.txt');
    assert.equal(md['note'], 'tab%09here');
    assert.equal(md['bad-key'], undefined);
    assert.equal(md['dotted.key'], undefined);
    const skipped = logs
      .records()
      .slice(before)
      .filter((r) => r['level'] === 40 && typeof r['metadataKey'] === 'string')
      .map((r) => r['metadataKey']);
    assert.deepEqual(skipped.sort(), ['bad-key', 'dotted.key']);
  });

  it('overwrites an existing blob', async () => {
    await target.deliver(requestFor('over/write.txt', 'first version, longer', { v: '1' }));
    await target.deliver(requestFor('over/write.txt', 'second', { v: '2' }));
    assert.deepEqual(await readBack('over/write.txt'), { sha256: sha256('second'), bytes: 6 });
    assert.equal((await blob('over/write.txt').getProperties()).metadata?.['v'], '2');
  });

  it('refuses paths that would leave the container', async () => {
    for (const p of ['../x', '/abs', 'a/../../b', 'a\0b', '']) {
      await assert.rejects(target.deliver(requestFor(p, 'x')), /refusing delivery path/, `path ${JSON.stringify(p)}`);
    }
  });

  it('fails when the source sends fewer or more bytes than the upload size, or breaks, and commits nothing', async () => {
    await assert.rejects(target.deliver(requestFor('size/short.txt', '12345', {}, 10)), /failed to upload blob to delivered size\/short\.txt: size mismatch: expected 10 bytes, the source sent 5/);
    await assert.rejects(target.deliver(requestFor('size/long.txt', '1234567890', {}, 4)), /size mismatch: expected 4 bytes/);
    await assert.rejects(target.deliver({ path: 'size/broken.bin', size: 20 * MiB, body: failingStream(9 * MiB), metadata: {} }), /source broke/);
    for (const name of ['size/short.txt', 'size/long.txt', 'size/broken.bin']) assert.equal(await blob(name).exists(), false, name);
    // A failed delivery leaves what was there before untouched.
    await target.deliver(requestFor('size/kept.txt', 'the good copy'));
    await assert.rejects(target.deliver({ path: 'size/kept.txt', size: 20 * MiB, body: failingStream(9 * MiB), metadata: {} }), /source broke/);
    assert.deepEqual(await readBack('size/kept.txt'), { sha256: sha256('the good copy'), bytes: 13 });
  });

  it('recreates the container when it was deleted behind its back', async () => {
    await service.getContainerClient(CONTAINER).delete();
    // The first delivery finds the container gone; the next one creates it again.
    await target.deliver(requestFor('again/one.txt', 'one')).catch(() => undefined);
    await target.deliver(requestFor('again/two.txt', 'two'));
    assert.deepEqual(await readBack('again/two.txt'), { sha256: sha256('two'), bytes: 3 });
  });

  it('reports health UP, and DOWN "not configured" when no client can be made', async () => {
    await target.health();
    assert.equal(target.healthName, 'Azure deliver target edav-blob');
    const broken = new AzBlobTarget({ name: 'broken', container_name: 'c', tenant_id: 't', client_id: 'c' }, logs.log);
    await assert.rejects(broken.health(), { message: 'Azure deliverer target broken not configured' });
    await assert.rejects(broken.deliver(requestFor('x.txt', 'x')), /Azure deliverer target broken not configured/);
  });

  it('gives a clear error while the emulator is down and works again after it restarts', async () => {
    await az.stop();
    await assert.rejects(target.deliver(requestFor('down/while-down.txt', 'x')), /failed to upload blob to delivered down\/while-down\.txt: .*ECONNREFUSED/);
    await assert.rejects(target.health(), /container delivered: .*ECONNREFUSED/);
    // In-memory emulator: it comes back empty, so the container is created again too.
    await az.restart();
    await target.health();
    const res = await target.deliver(requestFor('down/after-restart.txt', 'back again'));
    assert.deepEqual(await readBack('down/after-restart.txt'), { sha256: res.sha256, bytes: 10 });
  });

  it('never logs the credentials, not even when they are refused', async () => {
    const secretKey = Buffer.from('not-the-azurite-key-but-a-secret').toString('base64');
    const wrong = new AzBlobTarget({ name: 'wrong-key', container_name: 'other', storage_account: AZURITE_ACCOUNT, storage_key: secretKey, endpoint: az.endpoint }, logs.log);
    const err = await wrong.deliver(requestFor('denied.txt', 'x')).then(
      () => assert.fail('a wrong key must be refused'),
      (e: Error) => e,
    );
    assert.match(err.message, /failed to upload blob to other denied\.txt: /);
    await assert.rejects(wrong.health());
    assert.ok(!err.message.includes(secretKey));
    assert.ok(!logs.text().includes(secretKey), 'no key in the logs');
    assert.ok(!logs.text().includes(AZURITE_KEY), 'no key in the logs');
  });

  it('builds clients from a shared key or a service principal, with the default endpoint when none is given', () => {
    const shared = azureServiceClient({ name: 'a', container_name: 'c', storage_account: 'acct', storage_key: AZURITE_KEY });
    assert.equal(shared.url.replace(/\/$/, ''), 'https://acct.blob.core.windows.net');
    const principal = azureServiceClient({ name: 'b', container_name: 'c', storage_account: 'acct', tenant_id: 't', client_id: 'i', client_secret: 's' });
    assert.equal(principal.url.replace(/\/$/, ''), 'https://acct.blob.core.windows.net');
    assert.throws(() => azureServiceClient({ name: 'c', container_name: 'c', tenant_id: 't', client_id: 'i', client_secret: 's' }), /no endpoint/);
  });
});
