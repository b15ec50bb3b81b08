// The admin console (/admin/console/) in headless Debian Chromium against the built worker:
// signing in by pasting an admin API key, minting a key and seeing it once, revoking it and
// seeing the proxy and the admin API refuse it, disabling a user and seeing their session end,
// filtering the audit log, the key-bound console session ending with its key, a password
// sign-in and sign-out. Any Content-Security-Policy violation the page reports fails the test.
// Screenshots of each page go to tests/artifacts/console/ (git-ignored).

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chromium } from 'playwright-core';
import { PEPPER, mintKey, userWithRoles } from '../support/admin.mjs';
import { PASSWORD, SITE_ORIGIN, client, expectError, expectStatus, openVars, registerUser } from '../support/http.mjs';
import { SoftAuthenticator } from '../support/webauthn.mjs';
import { ROOT, generateSigningKey, startWorker } from '../support/worker.mjs';

const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];
const SHOTS = path.join(ROOT, 'tests', 'artifacts', 'console');
const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; " +
  "form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

describe('the admin console in Chromium', { timeout: 180_000 }, () => {
  let upstream;
  let w;
  let c;
  let gh;
  let browser;

  before(async () => {
    // A CMS stand-in behind the `cms` route, which only admins (or an admin key scoped to it) use.
    upstream = http.createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ path: req.url }));
    });
    await new Promise((r) => upstream.listen(0, '127.0.0.1', r));
    const routes = {
      cms: {
        prefix: '/cms/',
        upstream: `http://127.0.0.1:${upstream.address().port}/`,
        forward_all: true,
        read: { roles: ['admin'] },
      },
    };
    w = await startWorker({
      vars: openVars(generateSigningKey(), {
        API_KEY_PEPPER: PEPPER,
        ROUTES: JSON.stringify(routes),
        UPSTREAM_SIGNING_SECRET: 'console-upstream-secret-0123456789abcdef',
        // The proxy sees a revoked key at once (by default within 10 s; revocation.test.mjs
        // covers the delay).
        REVOCATION_DELAY_SECONDS: '0',
        // Passkeys on (the victim gets one, made by the software authenticator).
        WEBAUTHN_RP_ID: 'site.example',
        // A trusted issuer with inline keys, listed on the overview.
        TRUSTED_ISSUERS: {
          partner: {
            iss: 'https://auth.partner.example',
            jwks: { keys: [generateSigningKey().publicJwk] },
            audience: 'site',
            algorithms: ['EdDSA'],
            cookie: 'partner_id',
          },
        },
      }),
    });
    // The browser goes to localhost, a secure context: the Secure cookie works over plain http.
    gh = `http://localhost:${new URL(w.url).port}`;
    c = client(w.url);
    mkdirSync(SHOTS, { recursive: true });
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS, headless: true });
  });

  after(async () => {
    await browser?.close();
    await w?.stop();
    upstream?.close();
  });

  test('paste-key sign-in, mint and revoke a key, disable a user, filter the audit log, sign out', async () => {
    const admin = await userWithRoles(w, c, ['admin', 'user']);
    const { key: consoleKey, api_key: consoleKeyRecord } = await mintKey(c, admin.access, { label: 'console sign-in', role: 'admin', scopes: [] });
    const victim = await registerUser(c);

    const context = await browser.newContext();
    const page = await context.newPage();
    const problems = [];
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error' && /Content Security Policy|Refused to/i.test(m.text())) problems.push(`console: ${m.text()}`);
    });
    // Listen for CSP violations from the first script on (added through the debugger protocol,
    // which the page's own policy does not govern).
    await page.addInitScript(() => {
      window.__cspViolations = [];
      document.addEventListener('securitypolicyviolation', (e) => {
        window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`);
      });
    });
    const violations = () => page.evaluate(() => window.__cspViolations);
    const shot = (name) => page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });

    // 1. /admin/console redirects to the page, served with its own strict policy.
    const nav = await page.goto(`${gh}/admin/console`);
    assert.equal(new URL(page.url()).pathname, '/admin/console/');
    const headers = nav.headers();
    assert.equal(headers['content-security-policy'], CSP);
    assert.equal(headers['x-frame-options'], 'DENY');
    assert.equal(headers['cache-control'], 'no-store');
    await page.waitForSelector('[data-testid="sign-in"]:not([hidden])');
    await shot('sign-in');

    // 2. Paste an admin API key.
    await page.fill('[data-testid="key-form"] input[name="api_key"]', consoleKey);
    await page.click('[data-testid="key-form"] button[type="submit"]');
    await page.waitForSelector(`[data-testid="signed-in-as"]:has-text("${admin.email}")`);
    await page.waitForSelector('[data-testid="page-overview"] [data-testid="config"]');
    assert.match(await page.textContent('[data-testid="count-users"]'), /^\d+\+?$/);
    assert.match(await page.textContent('[data-testid="rate-limited"]'), /Rate-limited now/);
    const configText = await page.textContent('[data-testid="config"]');
    assert.match(configText, /API_KEY_PEPPER/);
    assert.ok(!configText.includes(PEPPER), 'no secret value on the overview');
    assert.match(configText, /Trusted issuers/);
    const issuerRow = await page.$$eval('[data-testid="config"] tr', (rows) => rows
      .map((r) => [...r.cells].map((td) => td.textContent))
      .find((cells) => cells[0] === 'partner'));
    assert.deepEqual(issuerRow, ['partner', 'https://auth.partner.example', 'inline', 'EdDSA', 'site', 'Bearer, cookie partner_id', 'any']);
    await shot('overview');
    // The session is an HttpOnly cookie only: nothing the page's script can read.
    const stored = await page.evaluate(() => JSON.stringify([document.cookie, { ...localStorage }, { ...sessionStorage }]));
    assert.ok(!/gk_|ghs_|ghc_/.test(stored), stored);
    const [cookie] = (await context.cookies()).filter((k) => k.name === 'gatehouse_console');
    assert.ok(cookie, 'console cookie set');
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, 'Strict');
    assert.equal(cookie.path, '/admin/');

    // 3. Mint a key: shown once, with a copy button.
    await page.click('a[data-page="keys"]');
    await page.waitForSelector('[data-testid="page-keys"] [data-testid="key-list"] table');
    await page.fill('[data-testid="mint-key"] input[name="label"]', 'e2e minted');
    await page.fill('[data-testid="mint-key"] input[name="role"]', 'admin');
    await page.fill('[data-testid="mint-key"] input[name="scopes"]', 'cms');
    await page.click('[data-testid="mint-key"] button[type="submit"]');
    await page.waitForSelector('[data-testid="key-once"]');
    const minted = (await page.textContent('[data-testid="key-once"]')).trim();
    assert.match(minted, /^gk_[a-z2-7]{52}$/);
    await page.click('[data-testid="copy-key"]');
    await page.waitForFunction(() => document.querySelector('[data-testid="copy-key"]')?.textContent !== 'Copy');
    await page.waitForSelector('tr[data-label="e2e minted"] [data-testid="revoke-key"]');
    await shot('keys');
    await page.click('[data-testid="dismiss-key"]');
    await page.waitForSelector('[data-testid="key-once"]', { state: 'detached' });
    assert.ok(!(await page.content()).includes(minted), 'the key is gone from the page');
    // It works on the proxy and the admin API...
    expectStatus(await c.get('/cms/hello', { bearer: minted }), 200);
    expectStatus(await c.get('/auth/whoami', { bearer: minted }), 200);
    // ...until it is revoked in the console.
    await page.click('tr[data-label="e2e minted"] [data-testid="revoke-key"]');
    await page.waitForSelector('tr[data-label="e2e minted"] [data-testid="key-status"]:has-text("revoked")');
    expectError(await c.get('/cms/hello', { bearer: minted }), 401, 'invalid_api_key');
    expectError(await c.get('/admin/users', { bearer: minted }), 401, 'invalid_api_key');

    // 4. Disable a user: their session ends.
    expectStatus(await c.get('/auth/me', { bearer: victim.access }), 200);
    const passkeyOpts = (await c.post('/auth/webauthn/register/options', {}, { bearer: victim.access })).body.publicKey;
    const registered = await c.post('/auth/webauthn/register/verify', { ...new SoftAuthenticator().register(passkeyOpts, { origin: SITE_ORIGIN }), name: 'Victim laptop' }, { bearer: victim.access });
    expectStatus(registered, 201);
    await page.click('a[data-page="users"]');
    await page.fill('[data-testid="user-search"] input[name="q"]', victim.email);
    await page.click('[data-testid="user-search"] button[type="submit"]');
    await page.click(`tr[data-user="${victim.email}"] [data-testid="user-link"]`);
    await page.waitForSelector(`[data-testid="user-card"][data-email="${victim.email}"][data-disabled="false"]`);
    await page.waitForSelector('[data-testid="user-sessions"] [data-testid="session-status"]:has-text("active")');
    // The victim's passkey shows, and the admin removes it (audited, by the console).
    const passkeyRow = `[data-testid="user-passkeys"] tr[data-passkey="${registered.body.passkey.id}"]`;
    await page.waitForSelector(`${passkeyRow}:has-text("Victim laptop")`);
    await page.click(`${passkeyRow} [data-testid="remove-passkey"]`);
    await page.waitForSelector('[data-testid="user-passkeys"] :text("No passkeys.")');
    assert.equal(await w.db.prepare('SELECT count(*) AS n FROM passkeys WHERE user_id = ?1').bind(victim.user.id).first('n'), 0);
    const removal = await w.db.prepare("SELECT actor_user_id, detail FROM audit_events WHERE kind = 'passkey_deleted' AND subject_user_id = ?1").bind(victim.user.id).first();
    assert.equal(removal.actor_user_id, admin.id);
    assert.equal(JSON.parse(removal.detail).by, 'admin');
    assert.ok(JSON.parse(removal.detail).via_console, removal.detail);
    await page.click('[data-testid="disable-user"]');
    await page.waitForSelector(`[data-testid="user-card"][data-email="${victim.email}"][data-disabled="true"]`);
    const statuses = await page.$$eval('[data-testid="user-sessions"] [data-testid="session-status"]', (els) => els.map((e) => e.textContent));
    assert.ok(statuses.length >= 1 && statuses.every((s) => s === 'revoked'), statuses.join());
    await shot('users');
    expectError(await c.post('/auth/refresh', { refresh_token: victim.refresh }), 401, 'invalid_refresh_token');
    expectError(await c.get('/auth/me', { bearer: victim.access }), 401, 'invalid_token');

    // 5. The audit log, filtered by kind, user and time; an event's details.
    await page.click('a[data-page="audit"]');
    await page.waitForSelector('[data-testid="audit-list"][data-loaded]');
    await page.selectOption('[data-testid="audit-filters"] select[name="kind"]', 'user_disabled');
    await page.fill('[data-testid="audit-filters"] input[name="user"]', victim.user.id);
    await page.$eval('[data-testid="audit-filters"] input[name="since"]', (el) => {
      const d = new Date(Date.now() - 3_600_000);
      el.value = new Date(d.getTime() - d.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
    });
    await page.click('[data-testid="audit-filters"] button[type="submit"]');
    await page.waitForSelector('[data-testid="audit-list"][data-loaded*="user_disabled"] [data-testid="event-kind"]');
    const kinds = await page.$$eval('[data-testid="event-kind"]', (els) => els.map((e) => e.textContent));
    assert.deepEqual(kinds, ['user_disabled']);
    await page.click('[data-testid="event-toggle"]');
    await page.waitForSelector('[data-testid="event-detail"]:not([hidden])');
    const detail = JSON.parse(await page.textContent('[data-testid="event-detail"]'));
    assert.equal(detail.subject_user_id, victim.user.id);
    assert.equal(detail.actor_user_id, admin.id);
    assert.equal(detail.detail.via_key, consoleKeyRecord.id, 'done through the key-bound console session');
    assert.match(detail.detail.via_console, /^fam_[a-z2-7]{26}$/);
    await shot('audit');
    // Until an hour ago there was nothing of the kind.
    await page.$eval('[data-testid="audit-filters"] input[name="until"]', (el) => {
      el.value = el.form.elements.since.value;
    });
    await page.click('[data-testid="audit-filters"] button[type="submit"]');
    await page.waitForSelector('[data-testid="audit-empty"]');

    // 6. The console session lives on its key: revoking the key ends it.
    const cookieHeader = `gatehouse_console=${cookie.value}`;
    const sameOrigin = { headers: { cookie: cookieHeader, 'sec-fetch-site': 'same-origin' } };
    expectStatus(await c.get('/admin/session', sameOrigin), 200);
    expectStatus(await c.del(`/admin/api-keys/${consoleKeyRecord.id}`, { bearer: admin.access }), 204);
    expectError(await c.get('/admin/users', sameOrigin), 401, 'invalid_session');
    await page.click('a[data-page="overview"]');
    await page.waitForSelector('[data-testid="sign-in"]:not([hidden])');
    assert.match(await page.textContent('[data-testid="sign-in-reason"]'), /invalid_session/);

    // 7. Sign in with the password, then sign out: the session is revoked server-side.
    await page.fill('[data-testid="password-form"] input[name="email"]', admin.email);
    await page.fill('[data-testid="password-form"] input[name="password"]', PASSWORD);
    await page.click('[data-testid="password-form"] button[type="submit"]');
    await page.waitForSelector('[data-testid="page-overview"] [data-testid="config"]');
    const [pwCookie] = (await context.cookies()).filter((k) => k.name === 'gatehouse_console');
    const pwHeaders = { headers: { cookie: `gatehouse_console=${pwCookie.value}`, 'sec-fetch-site': 'same-origin' } };
    const who = await c.get('/admin/session', pwHeaders);
    expectStatus(who, 200);
    assert.equal(who.body.session.via, 'password');
    // A reload keeps the session (the page asks GET /admin/session for its CSRF token).
    await page.reload();
    await page.waitForSelector('[data-testid="page-overview"] [data-testid="config"]');
    await page.click('[data-testid="sign-out"]');
    await page.waitForSelector('[data-testid="sign-in"]:not([hidden])');
    expectError(await c.get('/admin/users', pwHeaders), 401, 'invalid_session');
    assert.deepEqual((await context.cookies()).filter((k) => k.name === 'gatehouse_console'), [], 'cookie cleared');
    const sessions = await c.get(`/admin/users/${admin.id}/sessions`, { bearer: admin.access });
    const mine = sessions.body.sessions.find((s) => s.id === who.body.session.id);
    assert.equal(mine.status, 'revoked');
    assert.equal(mine.revoke_reason, 'logout');

    assert.deepEqual(await violations(), [], 'CSP violations');
    assert.deepEqual(problems, [], 'page errors');
    await context.close();
  });

  test('a page of another origin cannot drive the console session', async () => {
    const admin = await userWithRoles(w, c, ['admin']);
    const res = await c.post('/admin/session', { email: admin.email, password: PASSWORD }, { headers: { origin: 'https://evil.example' } });
    expectError(res, 403, 'csrf_validation_failed');
    const ok = await c.post('/admin/session', { email: admin.email, password: PASSWORD }, { headers: { origin: w.url } });
    expectStatus(ok, 200);
    const token = ok.cookie('gatehouse_console').value;
    // Without the CSRF token a change is refused even from the console's own origin.
    const change = await c.post('/admin/users', { email: 'x@example.com', password: PASSWORD }, { headers: { origin: w.url, cookie: `gatehouse_console=${token}` } });
    expectError(change, 403, 'csrf_validation_failed');
    const done = await c.post('/admin/users', { email: `made-${Date.now()}@example.com`, password: PASSWORD }, {
      headers: { origin: w.url, cookie: `gatehouse_console=${token}`, 'x-csrf-token': ok.body.csrf_token },
    });
    expectStatus(done, 201);
  });
});
