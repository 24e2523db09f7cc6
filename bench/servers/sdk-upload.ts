// The SDK side of the cloud comparison (bench/cloud.ts): one upload of `size` bytes straight to the emulator with the
// vendor's own streaming uploader, in a process of its own like the load generator: @aws-sdk/lib-storage's `Upload`
// for S3, `BlockBlobClient.uploadStream` for Azure, each with its default part size and concurrency. The bytes come
// from one reusable random buffer, as the load generator's do. Prints one JSON line: elapsed time and bytes.
//
//   node dist/bench/servers/sdk-upload.js '<json settings>'
import { S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { BlobServiceClient, StorageSharedKeyCredential } from '@azure/storage-blob';
import { randomFillSync } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Readable } from 'node:stream';

export type SdkUpload =
  | { backend: 's3'; size: number; endpoint: string; bucket: string; key: string; accessKeyId: string; secretAccessKey: string; region: string }
  | { backend: 'azure'; size: number; endpoint: string; account: string; accountKey: string; container: string; key: string };

const BUF = Buffer.allocUnsafe(1 << 20);
randomFillSync(BUF);

function body(size: number): Readable {
  let left = size;
  return new Readable({
    read() {
      if (left <= 0) {
        this.push(null);
        return;
      }
      const n = Math.min(left, BUF.length);
      left -= n;
      this.push(n === BUF.length ? BUF : BUF.subarray(0, n));
    },
  });
}

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2] ?? '{}') as SdkUpload;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  if (job.backend === 's3') {
    const client = new S3Client({
      endpoint: job.endpoint,
      region: job.region,
      forcePathStyle: true,
      credentials: { accessKeyId: job.accessKeyId, secretAccessKey: job.secretAccessKey },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    await new Upload({ client, params: { Bucket: job.bucket, Key: job.key, Body: body(job.size) } }).done();
    client.destroy();
  } else {
    const service = new BlobServiceClient(job.endpoint, new StorageSharedKeyCredential(job.account, job.accountKey));
    await service.getContainerClient(job.container).getBlockBlobClient(job.key).uploadStream(body(job.size));
  }
  const elapsedMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  process.stdout.write(`${JSON.stringify({ elapsedMs, bytes: job.size, cpuS: (cpu.user + cpu.system) / 1e6 })}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`sdk upload failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
