// Settings shared by the SNS and SQS clients. No SDK import here: the SDKs are loaded only when configured.

/**
 * The SDK's own retries are kept short: our callers retry with their own back-off (the report/event queues, the
 * subscriber's receive loop), so an unreachable service shows in /health quickly. Timeouts bound a call caught by a
 * dead connection. Region: the one in the ARN. Credentials: the SDK's default chain (AWS_ACCESS_KEY_ID …, AWS_PROFILE,
 * instance roles). Endpoint: AWS_ENDPOINT_URL_SNS / AWS_ENDPOINT_URL_SQS, else AWS_ENDPOINT_URL, else AWS's own (the
 * SDK reads these itself).
 */
export function awsClientConfig(region: string, requestTimeoutMs = 15_000) {
  return {
    region,
    maxAttempts: 2,
    requestHandler: { connectionTimeout: 5_000, requestTimeout: requestTimeoutMs },
  };
}

/** The endpoint override the SDK will use for `service` (for the start-up log line only), or `aws`. */
export function endpointInUse(service: 'SNS' | 'SQS', env: NodeJS.ProcessEnv = process.env): string {
  return env[`AWS_ENDPOINT_URL_${service}`] || env['AWS_ENDPOINT_URL'] || 'aws';
}

/** An SDK error's code name (`NotFoundException`, `QueueDoesNotExist`, `AWS.SimpleQueueService.NonExistentQueue` …). */
export function awsErrorName(err: unknown): string {
  const e = err as { name?: string; Code?: string; code?: string } | null;
  return e?.name ?? e?.Code ?? e?.code ?? '';
}
