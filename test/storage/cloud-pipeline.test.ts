// The DEX pipeline on the S3 and Azure stores (dex-pipeline.md §1.4, §4.2, §7.2; dex-api.md §1.4): sender manifest
// configs read from a bucket folder (in another bucket) or from a container, the finished upload's manifest kept
// beside it, delivery from the cloud `upload` source with its sha256, /info, the /health entries, and termination
// (an unfinished S3 upload's multipart upload is aborted).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { REPO_ROOT, startServer, type RunningServer } from '../helpers/server.js';
import { createUpload, head, patch, request, TR } from '../helpers/http.js';
import { DEXTESTING, encodeManifest } from '../helpers/dex-manifests.js';
import { sharedAzurite, sharedS3, type Backend } from '../helpers/backend.js';
import { waitUntil } from '../helpers/wait.js';
import { AzureContainerLoader, S3FolderLoader } from '../../internal/manifest/cloud-loaders.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const MiB = 1024 * 1024;
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Every file of the shipped sender configs, by relative key, plus one that only the cloud copy has. */
async function configFiles(): Promise<Map<string, Buffer>> {
  const root = path.join(REPO_ROOT, 'upload-configs');
  const out = new Map<string, Buffer>();
  const walk = async (dir: string) => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else out.set(path.relative(root, p).split(path.sep).join('/'), await readFile(p));
    }
  };
  await walk(root);
  const cloudOnly = { metadata_config: { version: '2.0', fields: [{ field_name: 'cloud_only_field', required: true }] } };
  out.set('cloudonly_route1.json', Buffer.from(JSON.stringify(cloudOnly)));
  return out;
}

/** Puts the configs where the server will read them; returns the variables that tell it so, and a loader of them. */
async function publishConfigs(backend: Backend): Promise<{ env: Record<string, string>; loader: S3FolderLoader | AzureContainerLoader }> {
  const files = await configFiles();
  const name = `dex-configs-${randomBytes(4).toString('hex')}`;
  if (backend === 's3') {
    const { s3rver } = await sharedS3();
    await s3rver.createBucket(name);
    const client = s3rver.client();
    for (const [key, body] of files) await client.send(new PutObjectCommand({ Bucket: name, Key: `manifests/${key}`, Body: body }));
    // Another bucket than the uploads', in a folder of it.
    return { env: { DEX_MANIFEST_CONFIG_BUCKET_NAME: name, DEX_S3_MANIFEST_CONFIG_FOLDER_NAME: 'manifests' }, loader: new S3FolderLoader(client, name, 'manifests') };
  }
  const { azurite } = await sharedAzurite();
  const container = azurite.serviceClient().getContainerClient(name);
  await container.create();
  for (const [key, body] of files) await container.getBlockBlobClient(key).uploadData(body);
  return { env: { DEX_MANIFEST_CONFIG_CONTAINER_NAME: name }, loader: new AzureContainerLoader(container) };
}

const blobCopies = async (s: RunningServer, id: string): Promise<Json[]> => {
  const text = await readFile(path.join(s.dir, 'uploads', 'reports', `${id}_blob-file-copy`), 'utf8').catch(() => '');
  return text.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as Json);
};

for (const backend of ['s3', 'azure'] as Backend[]) {
  describe(`the DEX pipeline on the ${backend} store`, { timeout: 180_000 }, () => {
    let s: RunningServer;
    let emptyConfigs: string;
    let configs: Awaited<ReturnType<typeof publishConfigs>>;
    before(async () => {
      // The local config folder is empty: every config the server uses comes from the cloud.
      emptyConfigs = await mkdtemp(path.join(tmpdir(), 'dex-no-configs-'));
      configs = await publishConfigs(backend);
      s = await startServer({ backend, env: { UPLOAD_MANIFEST_VALIDATION: 'true', UPLOAD_CONFIG_PATH: emptyConfigs, ...configs.env } });
    });
    after(async () => {
      await s?.cleanup();
      await rm(emptyConfigs, { recursive: true, force: true });
    });

    it(`reads the sender manifest configs from ${backend === 's3' ? 'a folder of another bucket' : 'a container'}`, async () => {
      const ok = await createUpload(s.url, { length: 5, metadata: encodeManifest(DEXTESTING) });
      assert.equal(ok.res.status, 201);
      // A config only the cloud copy has: its rule applies.
      const cloud = { data_stream_id: 'cloudonly', data_stream_route: 'route1', received_filename: 'x.txt' };
      const refused = await request({ method: 'POST', url: `${s.url}/files/`, headers: { ...TR, 'Upload-Length': '5', 'Upload-Metadata': encodeManifest(cloud) } });
      assert.equal(refused.status, 400, refused.body);
      assert.match((JSON.parse(refused.body) as { validation_errors: string[] }).validation_errors.join('\n'), /cloud_only_field/);
      const accepted = await createUpload(s.url, { length: 5, metadata: encodeManifest({ ...cloud, cloud_only_field: 'yes' }) });
      assert.equal(accepted.res.status, 201);
      // A stream with no config anywhere.
      const unknown = await request({
        method: 'POST',
        url: `${s.url}/files/`,
        headers: { ...TR, 'Upload-Length': '5', 'Upload-Metadata': encodeManifest({ ...DEXTESTING, data_stream_id: 'nosuchstream' }) },
      });
      assert.equal(unknown.status, 400);
      assert.match(unknown.body, /open nosuchstream_testevent1\.json: no such file or directory/);
      // The loader also lists the v2 configs there (the sender UI's stream list), and refuses keys outside them.
      const listed = await configs.loader.listV2();
      for (const n of ['dextesting_testevent1.json', 'cloudonly_route1.json']) assert.ok(listed.includes(n), `${n} in ${listed.join(', ')}`);
      await assert.rejects(configs.loader.load('../secret.json'), /invalid argument/);
      assert.equal(await configs.loader.load('v2/nosuch_route.json'), undefined);
    });

    it('a finished upload: its manifest is kept in the store, it is delivered from the store with its sha256, /info shows it', async () => {
      const body = randomBytes(7 * MiB + 5);
      const { url, id } = await createUpload(s.url, { length: body.length, metadata: encodeManifest(DEXTESTING) });
      assert.equal((await patch(url, 0, body)).status, 204);
      const reports = await waitUntil('the blob-file-copy report', async () => {
        const r = await blobCopies(s, id);
        return r.length > 0 ? r : undefined;
      });
      assert.equal(reports[0]!.stage_info.status, 'SUCCESS', JSON.stringify(reports[0]!.stage_info));
      assert.equal(reports[0]!.content.sha256, sha256(body));
      const delivered = await readFile(path.join(s.dir, reports[0]!.content.file_destination_blob_url as string));
      assert.ok(delivered.equals(body), 'the delivered copy holds the uploaded bytes');
      // The hydrated manifest beside the upload (`.meta`), keys sorted.
      const meta = JSON.parse((await s.store.read(`${id}.meta`)).toString()) as Record<string, string>;
      assert.equal(meta['upload_id'], id);
      assert.equal(meta['data_stream_id'], 'dextesting');
      assert.deepEqual(Object.keys(meta), Object.keys(meta).sort());
      if (backend === 'azure') {
        // The original's pre-finish appender: the manifest as the data blob's metadata (keys lower-cased by Azure).
        const { azurite } = await sharedAzurite();
        const props = await azurite.serviceClient().getContainerClient(s.store.location!).getBlobClient(`tus-prefix/${id}`).getProperties();
        assert.equal(props.metadata?.['upload_id'], id);
        assert.equal(props.metadata?.['data_stream_id'], 'dextesting');
      }
      // The sha256 taken by the delivery is kept in the upload's info.
      await waitUntil('the sha256 in the info', async () => ((await s.store.readInfo(id))['Sha256'] === sha256(body) ? true : undefined));
      const info = JSON.parse((await request({ method: 'GET', url: `${s.url}/info/${id}` })).body) as Json;
      assert.equal(info.manifest.upload_id, id);
      assert.equal(info.file_info.size_bytes, body.length);
      assert.equal(info.upload_status.status, 'Complete');
      assert.equal(info.deliveries[0].status, 'SUCCESS');
      assert.equal((await request({ method: 'GET', url: `${s.url}/info/00000000-0000-4000-8000-000000000000` })).status, 404);
    });

    it('/health names the storage and the upload source of the backend (dex-pipeline.md §7.2)', async () => {
      const h = JSON.parse((await request({ method: 'GET', url: `${s.url}/health` })).body) as { status: string; services: Array<{ service: string; status: string; health_issue: string }> };
      assert.equal(h.status, 'UP', JSON.stringify(h));
      const names = h.services.map((x) => x.service);
      const [storage, source] = backend === 's3' ? [`Tus storage S3 Bucket ${s.store.location}`, `S3 source ${s.store.location}`] : ['Tus storage', 'Azure source'];
      assert.equal(names[0], storage);
      assert.equal(names[names.length - 1], source);
      for (const x of h.services) assert.deepEqual([x.status, x.health_issue], ['UP', 'None reported'], x.service);
      assert.ok(!names.includes('File Storage') && !names.includes('File Source'));
    });

    it('terminating an unfinished upload removes everything it had in the store', async () => {
      const body = randomBytes(12 * MiB);
      const { url, id } = await createUpload(s.url, { length: 20 * MiB, metadata: encodeManifest(DEXTESTING) });
      assert.equal((await patch(url, 0, body)).headers['upload-offset'], String(body.length));
      const info = await s.store.readInfo(id);
      const uploadId = (info['Storage'] as Record<string, string>)['MultipartUpload'];
      let partFile = '';
      if (backend === 's3') {
        assert.ok(uploadId, 'the upload has a multipart upload');
        partFile = (await sharedS3()).s3rver.partFile(s.store.location!, uploadId, 1);
        assert.ok(existsSync(partFile), 'its parts are in the bucket');
      }
      assert.equal((await request({ method: 'DELETE', url, headers: TR })).status, 204);
      assert.equal((await head(url)).status, 404);
      assert.deepEqual((await s.store.names()).filter((n) => n.startsWith(id)), []);
      // S3: the multipart upload is aborted (AbortMultipartUpload), so its parts do not stay behind.
      if (backend === 's3') assert.equal(existsSync(path.dirname(partFile)), false, 'the multipart upload is gone');
    });
  });
}
