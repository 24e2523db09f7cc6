// OAuth on the real server (dex-api.md §3 with decisions.md's fixes) against a real OIDC issuer on loopback: every
// refusal with its status, body and challenge and nothing stored; uploads through tus-js-client with its `headers`
// option; preflights; the unguarded routes; and no token in the log, with every request logged at debug.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { SignJWT } from 'jose';
import * as tus from 'tus-js-client';
import { request, TR, type Response } from '../helpers/http.js';
import { MANIFEST_PAIRS, VALID_MANIFEST } from '../helpers/manifest-mode.js';
import { startServer, type RunningServer } from '../helpers/server.js';
import { claimsOf, nowSeconds, startIssuer, tamperedToken, unsignedToken, type TestIssuer } from '../helpers/oidc-issuer.js';
import { AUDIENCE, createWithBody, filesUnder, REQUIRED_SCOPE, startAuthServer, withAuth } from '../helpers/auth.js';

const UNAUTHORIZED = /^Bearer( error="(invalid_request|invalid_token)")?$/;

interface Refusal {
  name: string;
  /** The Authorization header (undefined: none), built once the issuer runs. */
  header: () => Promise<string | undefined>;
  status: 401 | 403;
  body: string | RegExp;
  /** Switches something off for the request and back on afterwards. */
  during?: (issuer: TestIssuer) => () => void;
}

describe('auth: the server with OAUTH_AUTH_ENABLED=true', () => {
  let issuer: TestIssuer;
  let s: RunningServer;
  /** Every token sent in this suite: none may appear in the server's log. */
  const sent = new Set<string>();
  const token = async (claims: Record<string, unknown> = {}, opts?: Parameters<TestIssuer['token']>[1]) => remember(await issuer.token(claims, opts));
  const remember = (t: string) => (sent.add(t), t);
  const bearer = async (claims: Record<string, unknown> = {}) => `Bearer ${await token(claims)}`;
  const active = () => ({ active: true, scope: `${REQUIRED_SCOPE} other`, aud: AUDIENCE, sub: 'user-2', exp: nowSeconds() + 3600 });

  before(async () => {
    issuer = await startIssuer({ audience: AUDIENCE, scope: `${REQUIRED_SCOPE} dex:info` });
    s = await startAuthServer(issuer);
  });
  after(async () => {
    await s.cleanup();
    await issuer.close();
  });

  const refusals: Refusal[] = [
    { name: 'no Authorization header', header: async () => undefined, status: 401, body: 'Authorization header missing' },
    { name: 'wrong scheme (Basic)', header: async () => `Basic ${Buffer.from('user:pass').toString('base64')}`, status: 401, body: 'Authorization header format is invalid' },
    { name: 'a JWT without the scheme', header: async () => `Token ${await token()}`, status: 401, body: 'Authorization header format is invalid' },
    { name: 'the scheme alone', header: async () => 'Bearer', status: 401, body: 'Authorization header format is invalid' },
    { name: 'an empty token', header: async () => 'Bearer ', status: 401, body: 'Authorization header format is invalid' },
    { name: 'alg: none', header: async () => `Bearer ${remember(unsignedToken(claimsOf(await issuer.token())))}`, status: 401, body: /^Failed to verify token: oidc: id token signed with unsupported algorithm, .* got "none"$/ },
    {
      name: 'HS256 signed with the public key',
      header: async () => {
        const secret = new TextEncoder().encode(await issuer.publicPem());
        return `Bearer ${remember(await new SignJWT(claimsOf(await issuer.token())).setProtectedHeader({ alg: 'HS256', kid: issuer.keys[0]!.kid }).sign(secret))}`;
      },
      status: 401,
      body: /^Failed to verify token: oidc: id token signed with unsupported algorithm, .* got "HS256"$/,
    },
    {
      name: 'a tampered payload',
      header: async () => {
        const t = await issuer.token({ scope: 'dex:info' });
        return `Bearer ${remember(tamperedToken(t, { ...claimsOf(t), scope: REQUIRED_SCOPE }))}`;
      },
      status: 401,
      body: /^Failed to verify token: failed to verify signature: /,
    },
    { name: 'expired', header: () => bearer({ exp: nowSeconds() - 3600 }), status: 401, body: /^Failed to verify token: oidc: token is expired \(Token Expiry: / },
    { name: 'not yet valid', header: () => bearer({ nbf: nowSeconds() + 3600 }), status: 401, body: /^Failed to verify token: oidc: current time .* before the nbf \(not before\) time: / },
    { name: 'wrong issuer', header: () => bearer({ iss: 'https://evil.example' }), status: 401, body: /^Failed to verify token: oidc: id token issued by a different provider, expected ".*" got "https:\/\/evil.example"$/ },
    { name: 'wrong audience', header: () => bearer({ aud: 'another-api' }), status: 401, body: `Failed to verify token: oidc: expected audience "${AUDIENCE}" got ["another-api"]` },
    {
      name: 'unknown key id',
      header: async () => `Bearer ${await token({}, { key: await issuer.newKey('RS256') })}`,
      status: 401,
      body: 'Failed to verify token: failed to verify signature: no applicable key found in the JSON Web Key Set',
    },
    { name: 'missing scope', header: () => bearer({ scope: 'dex:info' }), status: 403, body: 'One or more required scopes not found' },
    { name: 'no scope claim', header: () => bearer({ scope: undefined }), status: 403, body: 'One or more required scopes not found' },
    { name: 'a scope claim that is not a string', header: () => bearer({ scope: [REQUIRED_SCOPE] }), status: 401, body: 'Failed to parse token claims' },
    { name: 'inactive opaque token', header: async () => `Bearer ${remember(issuer.opaque({ ...active(), active: false }))}`, status: 401, body: 'Failed to verify token: token is not active' },
    { name: 'opaque token without the scope', header: async () => `Bearer ${remember(issuer.opaque({ ...active(), scope: 'dex:info' }))}`, status: 403, body: 'One or more required scopes not found' },
    ...(['reset', 'error'] as const).map(
      (mode): Refusal => ({
        name: `introspection endpoint down (${mode})`,
        header: async () => `Bearer ${remember(issuer.opaque(active()))}`,
        status: 401,
        body: 'Failed to verify token: token introspection failed',
        during: (i) => {
          i.modes.introspection = mode;
          return () => (i.modes.introspection = 'up');
        },
      }),
    ),
  ];

  /** The refusal as http.Error writes it, plus the Bearer challenge and the tus headers. */
  function assertRefusal(res: Response, r: Pick<Refusal, 'status' | 'body'>, what: string): void {
    assert.equal(res.status, r.status, `${what}: ${res.status} ${res.body}`);
    const body = res.body.replace(/\n$/, '');
    assert.equal(res.body.endsWith('\n'), true, `${what}: the body ends with a newline`);
    if (typeof r.body === 'string') assert.equal(body, r.body, what);
    else assert.match(body, r.body, what);
    assert.equal(res.headers['content-type'], 'text/plain; charset=utf-8', what);
    assert.equal(res.headers['x-content-type-options'], 'nosniff', what);
    assert.match(String(res.headers['www-authenticate']), r.status === 401 ? UNAUTHORIZED : /^Bearer error="insufficient_scope"$/, what);
    assert.equal(res.headers['location'], undefined, what);
  }

  describe('refusals (before anything is stored)', () => {
    for (const r of refusals) {
      it(`${r.name} → ${r.status}, on /files/ and /files`, async () => {
        const header = await r.header();
        const restore = r.during?.(issuer);
        try {
          for (const p of ['/files/', '/files']) {
            const res = await request({
              method: 'POST',
              url: `${s.url}${p}`,
              headers: { ...TR, 'Upload-Length': '5', 'Content-Type': 'application/offset+octet-stream', ...(header === undefined ? {} : { Authorization: header }) },
              body: 'hello',
            });
            assertRefusal(res, r, `${r.name} on ${p}`);
            assert.equal(res.headers['tus-resumable'], '1.0.0');
          }
        } finally {
          restore?.();
        }
      });
    }

    it('nothing was stored: no upload, no report, no event, no delivery', async () => {
      assert.deepEqual(await filesUnder(path.join(s.dir, 'uploads')), []);
    });

    it('a valid token passes the same request (the refusals above were the token\'s doing)', async () => {
      const res = await createWithBody(s.url, withAuth(await token()));
      assert.equal(res.status, 201, res.body);
    });
  });

  describe('every tus method and /info', () => {
    let uploadUrl: string;
    let id: string;
    let good: string;
    before(async () => {
      good = await token();
      const res = await request({ method: 'POST', url: `${s.url}/files/`, headers: withAuth(good, { ...TR, 'Upload-Length': '5', 'Upload-Metadata': MANIFEST_PAIRS }) });
      assert.equal(res.status, 201, res.body);
      uploadUrl = String(res.headers.location);
      id = uploadUrl.split('/').pop()!;
    });
    const offset = async () => (await request({ method: 'HEAD', url: uploadUrl, headers: withAuth(good, TR) })).headers['upload-offset'];

    it('PATCH with a bad token → 401 and no byte appended', async () => {
      const expired = await token({ exp: nowSeconds() - 3600 });
      const res = await request({ method: 'PATCH', url: uploadUrl, headers: withAuth(expired, { ...TR, 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' }), body: 'hello' });
      assertRefusal(res, { status: 401, body: /^Failed to verify token: oidc: token is expired/ }, 'PATCH');
      assert.equal(await offset(), '0');
      assert.equal((await stat(path.join(s.storeDir, id))).size, 0);
    });

    it('a large PATCH body without a token is refused before it is read; the client, still sending, gets the 401', async () => {
      // Keep-alive, as tus clients send it: the server drains the unread body after answering. (A client that sends
      // `Connection: close` has its connection closed by Node right after the answer, on every route alike.)
      const headers = { ...TR, Connection: 'keep-alive', 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' };
      const res = await request({ method: 'PATCH', url: uploadUrl, headers, body: randomBytes(4 * 1024 * 1024) });
      assertRefusal(res, { status: 401, body: 'Authorization header missing' }, 'large PATCH');
      assert.equal(await offset(), '0');
    });

    it('HEAD without a token → 401 without a body; DELETE without one → 401 and the upload stays', async () => {
      const h = await request({ method: 'HEAD', url: uploadUrl, headers: TR });
      assert.equal(h.status, 401);
      assert.equal(h.body, '');
      assert.equal(h.headers['www-authenticate'], 'Bearer');
      assert.equal(h.headers['upload-offset'], undefined);
      const d = await request({ method: 'DELETE', url: uploadUrl, headers: TR });
      assertRefusal(d, { status: 401, body: 'Authorization header missing' }, 'DELETE');
      assert.equal(await offset(), '0');
    });

    it('X-HTTP-Method-Override does not get around the check', async () => {
      const res = await request({ method: 'POST', url: uploadUrl, headers: { ...TR, 'X-HTTP-Method-Override': 'DELETE' } });
      assertRefusal(res, { status: 401, body: 'Authorization header missing' }, 'override');
      assert.equal(await offset(), '0');
    });

    it('PATCH with the token completes the upload', async () => {
      const res = await request({ method: 'PATCH', url: uploadUrl, headers: withAuth(good, { ...TR, 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' }), body: 'hello' });
      assert.equal(res.status, 204, res.body);
      assert.equal(await readFile(path.join(s.storeDir, id), 'utf8'), 'hello');
    });

    it('/info/{id}: any method without a token (OPTIONS too) → 401; with one → 200 and the manifest', async () => {
      for (const method of ['GET', 'POST', 'OPTIONS']) {
        assertRefusal(await request({ method, url: `${s.url}/info/${id}` }), { status: 401, body: 'Authorization header missing' }, `${method} /info`);
      }
      assertRefusal(await request({ method: 'GET', url: `${s.url}/info/${id}`, headers: { Authorization: await bearer({ scope: 'dex:info' }) } }), { status: 403, body: 'One or more required scopes not found' }, '/info without the scope');
      const res = await request({ method: 'GET', url: `${s.url}/info/${id}`, headers: withAuth(good) });
      assert.equal(res.status, 200, res.body);
      const info = JSON.parse(res.body) as { manifest: Record<string, string>; upload_status: { status: string } };
      assert.equal(info.manifest['data_stream_id'], 'dextesting');
      assert.equal(info.upload_status.status, 'Complete');
      // An unknown id is still the handler's 404 once the token passes, and the check comes first without one.
      assert.equal((await request({ method: 'GET', url: `${s.url}/info/${randomUUID()}`, headers: withAuth(good) })).status, 404);
      assert.equal((await request({ method: 'GET', url: `${s.url}/info/${randomUUID()}` })).status, 401);
    });
  });

  describe('browsers and other routes', () => {
    it('CORS preflight and tus discovery (OPTIONS) pass without a token', async () => {
      for (const p of ['/files/', '/files', `/files/${randomUUID()}`]) {
        const res = await request({
          method: 'OPTIONS',
          url: `${s.url}${p}`,
          headers: { Origin: 'https://sender.example', 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'authorization, tus-resumable, upload-length' },
        });
        assert.equal(res.status, 200, `${p}: ${res.body}`);
        assert.equal(res.headers['access-control-allow-origin'], 'https://sender.example');
        assert.match(String(res.headers['access-control-allow-headers']), /\bAuthorization\b/);
        assert.equal(res.headers['www-authenticate'], undefined);
      }
      const discovery = await request({ method: 'OPTIONS', url: `${s.url}/files/` });
      assert.equal(discovery.status, 200);
      assert.equal(discovery.headers['tus-version'], '1.0.0');
    });

    it('a refusal carries the CORS headers, so browser code can read its status', async () => {
      const res = await request({ method: 'POST', url: `${s.url}/files/`, headers: { ...TR, 'Upload-Length': '5', Origin: 'https://sender.example' } });
      assertRefusal(res, { status: 401, body: 'Authorization header missing' }, 'CORS');
      assert.equal(res.headers['access-control-allow-origin'], 'https://sender.example');
      assert.match(String(res.headers['access-control-expose-headers']), /Location/);
    });

    it('/health, /version, / and /route need no token; /metrics is not guarded either', async () => {
      for (const p of ['/health', '/version', '/']) {
        const res = await request({ method: 'GET', url: `${s.url}${p}` });
        assert.equal(res.status, 200, `${p}: ${res.body}`);
        assert.match(String(res.headers['content-type']), /^application\/json/);
      }
      const route = await request({ method: 'POST', url: `${s.url}/route/${randomUUID()}`, headers: { 'Content-Type': 'application/json' }, body: '{"target":"edav"}' });
      assert.equal(route.status, 404, route.body);
      const metrics = await request({ method: 'GET', url: `${s.url}/metrics` });
      assert.notEqual(metrics.status, 401);
      assert.equal(metrics.headers['www-authenticate'], undefined);
    });
  });

  describe('tus-js-client with its `headers` option', () => {
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    const run = (data: Buffer, options: ConstructorParameters<typeof tus.Upload>[1]) =>
      new Promise<tus.Upload>((resolve, reject) => {
        const upload: tus.Upload = new tus.Upload(data, { endpoint: `${s.url}/files/`, chunkSize: 1024 * 1024, retryDelays: [], ...options, onSuccess: () => resolve(upload), onError: reject });
        upload.start();
      });
    const metadata = { ...VALID_MANIFEST, filename: 'auth-test.bin' };

    it('a JWT with the scope: a chunked upload works end to end, and /info shows it', { timeout: 120_000 }, async () => {
      const data = randomBytes(3 * 1024 * 1024 + 17);
      const t = await token();
      const upload = await run(data, { headers: { Authorization: `Bearer ${t}` }, metadata });
      const id = upload.url!.split('/').pop()!;
      assert.equal(sha(await readFile(path.join(s.storeDir, id))), sha(data));
      const info = JSON.parse((await request({ method: 'GET', url: `${s.url}/info/${id}`, headers: withAuth(t) })).body) as { manifest: Record<string, string>; upload_status: { status: string } };
      assert.equal(info.manifest['filename'], 'auth-test.bin');
      assert.equal(info.upload_status.status, 'Complete');
    });

    it('an opaque token (introspection): the upload resumes through HEAD and PATCH with the same headers', { timeout: 120_000 }, async () => {
      const data = randomBytes(2 * 1024 * 1024 + 3);
      const t = remember(issuer.opaque(active()));
      const headers = { Authorization: `Bearer ${t}` };
      // Created with the raw API, then finished by the client from its URL: HEAD first, then PATCHes.
      const created = await request({ method: 'POST', url: `${s.url}/files/`, headers: withAuth(t, { ...TR, 'Upload-Length': String(data.length), 'Upload-Metadata': MANIFEST_PAIRS }) });
      assert.equal(created.status, 201, created.body);
      const methods: string[] = [];
      const upload = await run(data, { uploadUrl: String(created.headers.location), headers, onBeforeRequest: (req) => void methods.push(req.getMethod()) });
      assert.equal(methods[0], 'HEAD');
      assert.ok(methods.includes('PATCH'));
      assert.equal(sha(await readFile(path.join(s.storeDir, upload.url!.split('/').pop()!))), sha(data));
    });

    it('no token, or one without the scope: the client fails with 401 / 403 and nothing new is stored', async () => {
      // An earlier upload's `.info` may be being rewritten (its sha256 kept after delivery) through a temporary file
      // renamed into place: that is no new upload, so temporaries are left out of both listings.
      const stored = async () => (await filesUnder(s.storeDir)).filter((f) => !/\.info\.[0-9a-f]{8}\.tmp$/.test(f));
      const before = await stored();
      for (const [headers, status] of [[{}, 401], [{ Authorization: await bearer({ scope: 'dex:info' }) }, 403]] as const) {
        const err = (await run(randomBytes(1000), { headers, metadata }).then(
          () => assert.fail('the upload succeeded'),
          (e: unknown) => e,
        )) as tus.DetailedError;
        assert.equal(err.originalResponse?.getStatus(), status, String(err));
      }
      assert.deepEqual(await stored(), before);
    });
  });

  describe('the log', () => {
    it('holds no token and no client secret, though every request was logged at debug', async () => {
      assert.equal(await s.stop(), 0, 'the server stops cleanly (and has written all its output)');
      const logs = s.logs();
      assert.match(logs, /"request refused by the auth check"/);
      assert.match(logs, /"msg":"request"/);
      assert.ok(sent.size >= 15, `${sent.size} tokens`);
      for (const t of sent) assert.ok(!logs.includes(t), `a token reached the log: ${t.slice(0, 12)}…`);
      for (const t of sent) for (const part of t.split('.')) if (part.length >= 16) assert.ok(!logs.includes(part), 'a token part reached the log');
      assert.ok(!logs.includes(issuer.clientSecret), 'the introspection client secret reached the log');
      assert.ok(!logs.includes(Buffer.from(`dex-upload-server:${issuer.clientSecret}`).toString('base64')), 'the Basic credentials reached the log');
    });
  });
});

describe('auth: OAUTH_AUTH_ENABLED=false', () => {
  it('the tus routes and /info need no token (and ignore one)', async () => {
    const s = await startServer({ env: { OAUTH_AUTH_ENABLED: 'false', OAUTH_ISSUER_URL: 'http://127.0.0.1:9/' } });
    try {
      const res = await request({ method: 'POST', url: `${s.url}/files/`, headers: { ...TR, 'Upload-Length': '5', Authorization: 'Bearer whatever' } });
      assert.equal(res.status, 201, res.body);
      const id = String(res.headers.location).split('/').pop();
      assert.equal((await request({ method: 'GET', url: `${s.url}/info/${id}` })).status, 200);
    } finally {
      await s.cleanup();
    }
  });
});
