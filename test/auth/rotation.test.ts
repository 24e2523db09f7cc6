// The issuer rotates its signing key while the server runs: tokens of the new key are accepted without a restart
// (within jose's JWKS cooldown, 5 s here), tokens of the withdrawn key are refused, and the JWKS is not hammered.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request, TR } from '../helpers/http.js';
import { startIssuer, type TestIssuer } from '../helpers/oidc-issuer.js';
import { AUDIENCE, REQUIRED_SCOPE, startAuthServer, withAuth } from '../helpers/auth.js';
import type { RunningServer } from '../helpers/server.js';
import { sleep } from '../helpers/wait.js';

describe('auth: signing keys rotated while the server runs', () => {
  let issuer: TestIssuer;
  let s: RunningServer;
  // Plain tus server: a creation needs no manifest, so each probe is one POST.
  before(async () => {
    issuer = await startIssuer({ audience: AUDIENCE, scope: REQUIRED_SCOPE });
    s = await startAuthServer(issuer, { UPLOAD_MANIFEST_VALIDATION: 'false' });
  });
  after(async () => {
    await s.cleanup();
    await issuer.close();
  });
  const create = (token: string) => request({ method: 'POST', url: `${s.url}/files/`, headers: withAuth(token, { ...TR, 'Upload-Length': '1' }) });

  it('new tokens are accepted without a restart; old ones are refused once their key is gone', { timeout: 90_000 }, async () => {
    const oldToken = await issuer.token();
    assert.equal((await create(oldToken)).status, 201);
    const pid = s.pid;
    const jwksBefore = issuer.counts.jwks;

    const started = Date.now();
    const fresh = await issuer.rotate();
    const newToken = await issuer.token({}, { key: fresh });
    // Until the cooldown since the last JWKS fetch has passed, the unknown key id is refused; then it is found.
    const deadline = Date.now() + 60_000;
    let refusedMeanwhile = 0;
    for (;;) {
      const res = await create(newToken);
      if (res.status === 201) break;
      assert.equal(res.status, 401, res.body);
      assert.equal(res.body, 'Failed to verify token: failed to verify signature: no applicable key found in the JSON Web Key Set\n');
      refusedMeanwhile++;
      assert.ok(Date.now() < deadline, 'tokens of the new key were never accepted');
      await sleep(250);
    }
    const fetches = issuer.counts.jwks - jwksBefore;
    assert.ok(fetches >= 1, 'the JWKS was fetched again');
    // However many probes were refused meanwhile, the JWKS was fetched at most once per cooldown period (5 s).
    const periods = Math.floor((Date.now() - started) / 5_000);
    assert.ok(fetches <= 2 + periods, `${fetches} JWKS fetches for ${refusedMeanwhile} refusals in ${periods} cooldown periods`);

    const res = await create(oldToken);
    assert.equal(res.status, 401);
    assert.match(res.body, /^Failed to verify token: failed to verify signature: no applicable key found/);
    assert.equal(s.pid, pid);
    assert.equal(s.proc.exitCode, null, 'the server never restarted');
    assert.equal(s.logs().match(/"server listening"/g)?.length, 1);
  });
});
