// The Nuxt example (built with `nuxt generate`) in headless Debian Chromium, against Gatehouse
// and the demo CMS: the site is served from http://localhost:<site>, Gatehouse from
// http://localhost:<gatehouse> (same site, another origin), attack pages from an unlisted
// http://localhost:<other> (same site) and from http://127.0.0.1:<other> (another site).
// The example is built on the @gatehouse/nuxt module (clients/nuxt), installed with
// @gatehouse/client (clients/js) into its node_modules as copies, as a site installs them.

import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chromium } from 'playwright-core';
import { demoRoutes, startDemoCms } from '../../scripts/demo-cms.mjs';
import { expectError, request, sha256hex, sleep } from '../support/http.mjs';
import { startStaticSite } from '../../scripts/static-site.mjs';
import { stepNow, totp, wrongCode } from '../support/totp.mjs';
import { ROOT, generateSigningKey, startWorker } from '../support/worker.mjs';

const EXAMPLE = path.join(ROOT, 'examples', 'nuxt-static');
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];
const ACCESS_TTL = 60;
const PASSWORD = 'a long browser password';

/** Every token-looking value the page can reach from script must be absent. */
async function expectNoTokenStored(page, where) {
  const stored = await page.evaluate(() => ({
    local: Object.entries(localStorage),
    session: Object.entries(sessionStorage),
    cookie: document.cookie,
  }));
  const text = JSON.stringify(stored);
  for (const pattern of [/eyJ[A-Za-z0-9_-]{10,}/, /ghr_/, /ghc_/, /gatehouse_refresh/]) {
    assert.ok(!pattern.test(text), `${where}: ${pattern} found in web storage or document.cookie: ${text}`);
  }
}

async function waitText(page, testId, pattern, timeout = 15_000) {
  await page.waitForFunction(
    ([id, src, flags]) => new RegExp(src, flags).test(document.querySelector(`[data-testid="${id}"]`)?.textContent ?? ''),
    [testId, pattern.source, pattern.flags],
    { timeout },
  );
}

/** The files of a directory, recursively, as paths relative to it. */
function filesIn(dir, prefix = '') {
  return readdirSync(path.join(dir, prefix), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesIn(dir, path.join(prefix, e.name)) : [path.join(prefix, e.name)],
  );
}

/** The example's copy of a package of this repository differs from what `npm pack` makes of it. */
function staleCopy(source, name) {
  const [packed] = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json', '--loglevel=error'], { cwd: source, encoding: 'utf8' }));
  const installed = path.join(EXAMPLE, 'node_modules', ...name.split('/'));
  const want = packed.files.map((f) => f.path).sort();
  let have;
  try {
    have = filesIn(installed).sort();
  } catch {
    return ['(not installed)'];
  }
  const differing = want.filter((f) => !have.includes(f) || !readFileSync(path.join(installed, f)).equals(readFileSync(path.join(source, f))));
  return [...differing, ...have.filter((f) => !want.includes(f))];
}

async function itemTitles(page) {
  return page.$$eval('[data-testid="item"]', (els) => els.map((e) => e.textContent.trim()));
}

describe('the Nuxt example in Chromium', { timeout: 240_000 }, () => {
  let cms;
  let w;
  let site;
  let other;
  let browser;
  let outDir;
  let gatehouse;
  let siteUrl;

  before(async () => {
    const readKey = 'cms-read-key-0123456789';
    const writeKey = 'cms-write-key-0123456789';
    const signingSecret = 'upstream-signing-secret-0123456789abcdef';
    cms = await startDemoCms({ readKey, writeKey, signingSecret });
    site = await startStaticSite();
    other = await startStaticSite();
    siteUrl = `http://localhost:${site.port}`;
    w = await startWorker({
      vars: {
        REGISTRATION: 'open',
        JWT_SIGNING_KEY: generateSigningKey().d,
        PBKDF2_ITERATIONS: '10000',
        ACCESS_TOKEN_TTL: String(ACCESS_TTL),
        CLOCK_LEEWAY_SECONDS: '0',
        ALLOWED_ORIGINS: siteUrl,
        ROUTES: JSON.stringify(demoRoutes(cms.url)),
        CMS_READ_KEY: readKey,
        CMS_WRITE_KEY: writeKey,
        UPSTREAM_SIGNING_SECRET: signingSecret,
        // Passkeys for the site (WEBAUTHN_ORIGINS: ALLOWED_ORIGINS); browsers take no IP here.
        WEBAUTHN_RP_ID: 'localhost',
        // The TOTP second factor (32 random bytes, base64url).
        MFA_ENCRYPTION_KEY: randomBytes(32).toString('base64url'),
      },
    });
    gatehouse = `http://localhost:${new URL(w.url).port}`;

    // The example must build on the current packages: it holds copies of them (install-links).
    for (const [dir, name] of [['js', '@gatehouse/client'], ['nuxt', '@gatehouse/nuxt']]) {
      const stale = staleCopy(path.join(ROOT, 'clients', dir), name);
      assert.deepEqual(stale, [], `examples/nuxt-static/node_modules/${name} is not the current clients/${dir} (${stale.join(', ')}): run bash scripts/setup.sh`);
    }

    // The real static build, pointed at this Gatehouse.
    const gen = spawnSync(path.join(EXAMPLE, 'node_modules', '.bin', 'nuxt'), ['generate'], {
      cwd: EXAMPLE,
      env: { ...process.env, GATEHOUSE_URL: gatehouse, NUXT_TELEMETRY_DISABLED: '1' },
      encoding: 'utf8',
    });
    assert.equal(gen.status, 0, `nuxt generate failed:\n${gen.stdout}\n${gen.stderr}`);
    outDir = mkdtempSync(path.join(tmpdir(), 'gatehouse-nuxt-'));
    cpSync(path.join(EXAMPLE, '.output', 'public'), outDir, { recursive: true });
    site.setRoot(outDir);

    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS, headless: true });
  });

  after(async () => {
    await browser?.close();
    await w?.stop();
    await cms?.close();
    await site?.close();
    await other?.close();
    if (outDir) rmSync(outDir, { recursive: true, force: true });
  });

  test('sign up, read and create items, reload, two tabs refreshing at once, attacks refused, logout everywhere', async () => {
    const context = await browser.newContext();
    // Every refresh request: when it left and when its answer had fully arrived, both taken
    // from the browser's own timing of the request (one clock for every tab).
    const refreshes = [];
    const isRefresh = (r) => r.method() === 'POST' && r.url() === `${gatehouse}/auth/refresh`;
    context.on('request', (r) => {
      if (isRefresh(r)) refreshes.push({ request: r, seen: Date.now(), sent: null, done: null });
    });
    const finished = (r) => {
      const entry = refreshes.find((e) => e.request === r);
      if (!entry) return;
      const t = r.timing();
      entry.sent = t.startTime;
      entry.done = t.responseEnd >= 0 ? t.startTime + t.responseEnd : null;
    };
    context.on('requestfinished', finished);
    context.on('requestfailed', finished);
    const tab1 = await context.newPage();
    const pageErrors = [];
    tab1.on('pageerror', (e) => pageErrors.push(e));

    // 0. The guarded page (/account, middleware gatehouse-auth) sends a visitor who is not
    //    signed in to the home page, without showing itself.
    await tab1.goto(`${siteUrl}/account`);
    await tab1.waitForURL(`${siteUrl}/`);
    await waitText(tab1, 'status', /Not logged in/);
    assert.equal(await tab1.$('[data-testid=account]'), null, 'the account page is not shown');

    // 1. Sign up; the published items are listed.
    await tab1.goto(`${siteUrl}/`);
    await waitText(tab1, 'status', /Not logged in/);
    await expectNoTokenStored(tab1, 'anonymous');
    await waitText(tab1, 'items', /Welcome to the demo/);
    const email = `chromium-${Date.now()}@example.com`;
    await tab1.fill('input[name=email]', email);
    await tab1.fill('input[name=password]', PASSWORD);
    await tab1.click('[data-testid=signup]');
    await waitText(tab1, 'who', new RegExp(email.replace(/[.]/g, '\\.')));
    await expectNoTokenStored(tab1, 'after sign-up');
    const titles = await itemTitles(tab1);
    assert.ok(titles.includes('Welcome to the demo') && !titles.includes('A draft'), titles.join(', '));

    // 2. Create an item through the proxy; it is owned by the user.
    await tab1.fill('input[name=title]', 'Written in Chromium');
    await tab1.click('[data-testid=create]');
    await waitText(tab1, 'message', /created/);
    await waitText(tab1, 'items', /Written in Chromium/);
    const created = cms.items.posts.find((i) => i.title === 'Written in Chromium');
    assert.ok(created, 'the CMS stored the item');
    const userRow = await w.db.prepare('SELECT id FROM users WHERE email = ?').bind(email).first();
    assert.equal(created.author, userRow.id, 'owner set by Gatehouse');
    assert.equal(created._state, 1, 'published (Cockpit\'s default)');
    await expectNoTokenStored(tab1, 'after create');

    // 3. Reload: the session comes back from the HttpOnly cookie.
    await tab1.reload();
    await waitText(tab1, 'who', new RegExp(email.replace(/[.]/g, '\\.')));
    await waitText(tab1, 'items', /Written in Chromium/);
    await expectNoTokenStored(tab1, 'after reload');

    // 3b. Signed in, the guarded page shows: reached by a link, and loaded directly (it waits for
    //     the session restored from the cookie); then back home by a link.
    const emailRe = new RegExp(email.replace(/[.]/g, '\\.'));
    await tab1.click('[data-testid=nav-account]');
    await waitText(tab1, 'account-email', emailRe);
    assert.equal(tab1.url(), `${siteUrl}/account`);
    await tab1.goto(`${siteUrl}/account`);
    await waitText(tab1, 'account-email', emailRe);
    assert.equal(tab1.url(), `${siteUrl}/account`);
    await waitText(tab1, 'account-roles', /user/);
    await tab1.click('[data-testid=nav-home]');
    await waitText(tab1, 'who', emailRe);
    await waitText(tab1, 'items', /Written in Chromium/);

    // 4. A second tab restores the same session.
    const tab2 = await context.newPage();
    tab2.on('pageerror', (e) => pageErrors.push(e));
    await tab2.goto(`${siteUrl}/`);
    await waitText(tab2, 'who', new RegExp(email.replace(/[.]/g, '\\.')));
    await expectNoTokenStored(tab2, 'second tab');
    const [cookie] = (await context.cookies(`${gatehouse}/auth/refresh`)).filter((c) => c.name === 'gatehouse_refresh');
    assert.ok(cookie?.httpOnly && cookie.secure && cookie.sameSite === 'Lax', JSON.stringify(cookie));
    const family = await w.db
      .prepare('SELECT family_id FROM refresh_tokens WHERE token_hash = ?')
      .bind(sha256hex(cookie.value))
      .first('family_id');

    // 5. While both tabs' access tokens run out: pages of origins not in ALLOWED_ORIGINS, in
    //    the same browser, try to read Gatehouse's answers and to log the user out.
    const attack = async (origin) => {
      other.addPage('/evil.html', '<!doctype html><title>evil</title><p>evil</p>');
      const evil = await context.newPage();
      await evil.goto(`${origin}/evil.html`);
      const outcome = await evil.evaluate(async (g) => {
        const tryRead = async (url, init) => {
          try {
            const res = await fetch(url, { credentials: 'include', ...init });
            return `read ${res.status}`;
          } catch {
            return 'blocked';
          }
        };
        const result = {
          session: await tryRead(`${g}/auth/session`),
          me: await tryRead(`${g}/auth/me`),
          items: await tryRead(`${g}/cms/content/items/posts`),
          refreshJson: await tryRead(`${g}/auth/refresh`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }),
        };
        // Simple requests go out without a preflight (the answer stays opaque): the cookie
        // rides along when the attacker is same-site, so Gatehouse itself must refuse them.
        for (const [path, type] of [['/auth/logout', 'text/plain'], ['/auth/refresh', 'text/plain'], ['/auth/logout', 'application/x-www-form-urlencoded']]) {
          const res = await fetch(`${g}${path}`, { method: 'POST', mode: 'no-cors', credentials: 'include', headers: { 'content-type': type }, body: '{}' });
          result[`${path} ${type}`] = res.type;
        }
        return result;
      }, gatehouse);
      await expectNoTokenStored(evil, `attack page ${origin}`);
      await evil.close();
      return outcome;
    };
    const wait = sleep((ACCESS_TTL + 2) * 1000);
    for (const origin of [`http://localhost:${other.port}`, `http://127.0.0.1:${other.port}`]) {
      const outcome = await attack(origin);
      for (const key of ['session', 'me', 'items', 'refreshJson']) {
        assert.equal(outcome[key], 'blocked', `${origin} read ${key}: ${JSON.stringify(outcome)}`);
      }
    }
    const fam = await w.db.prepare('SELECT revoked_at FROM refresh_families WHERE id = ?').bind(family).first();
    assert.equal(fam.revoked_at, null, 'the attack pages could not log the user out');
    const stillCurrent = await w.db.prepare('SELECT rotated_at FROM refresh_tokens WHERE token_hash = ?').bind(sha256hex(cookie.value)).first();
    assert.equal(stillCurrent.rotated_at, null, 'nor rotate the refresh token');
    await wait;

    // 6. Both tabs act at the same moment with expired access tokens: one refresh between them
    //    (Web Lock + BroadcastChannel), both stay logged in.
    const before = refreshes.length;
    const started = Date.now();
    await Promise.all([tab1.click('[data-testid=reload-items]'), tab2.click('[data-testid=reload-items]')]);
    for (const tab of [tab1, tab2]) {
      await waitText(tab, 'items', /Written in Chromium/);
      await tab.waitForFunction(() => !document.querySelector('[data-testid=reload-items]').disabled);
      await waitText(tab, 'who', new RegExp(email.replace(/[.]/g, '\\.')));
      assert.equal(await tab.textContent('[data-testid=message]'), '');
      await expectNoTokenStored(tab, 'after the simultaneous refresh');
    }
    const during = refreshes
      .slice(before)
      .filter((e) => e.seen >= started)
      .sort((a, b) => a.sent - b.sent);
    // Usually exactly one: the Web Lock serialises the tabs and the first one's broadcast lets
    // the second adopt its token. Under load the lock can be granted to the second tab before
    // the broadcast arrives; it then refreshes once more, after the first, which the server's
    // rotation accepts. Never two at the same time: without the cross-tab lock both tabs
    // would send their refresh together.
    assert.ok(during.length >= 1 && during.length <= 2, `refresh requests while both tabs acted: ${during.length}`);
    for (let i = 1; i < during.length; i += 1) {
      assert.ok(during[i - 1].done !== null && during[i].sent >= during[i - 1].done, `refresh ${i + 1} was sent before refresh ${i} had its answer: ${JSON.stringify(during.map(({ sent, done }) => ({ sent, done })))}`);
    }
    const me1 = await tab1.evaluate(async () => document.querySelector('[data-testid=who]').textContent);
    assert.equal(me1, email);

    // 7. Logout in one tab ends the session everywhere; the other tab, on the guarded page,
    //    is sent home.
    const [current] = (await context.cookies(`${gatehouse}/auth/refresh`)).filter((c) => c.name === 'gatehouse_refresh');
    await tab2.click('[data-testid=nav-account]');
    await waitText(tab2, 'account-email', emailRe);
    await tab1.click('[data-testid=logout]');
    await waitText(tab1, 'status', /Not logged in/);
    await tab2.waitForURL(`${siteUrl}/`);
    await waitText(tab2, 'status', /Not logged in/);
    await expectNoTokenStored(tab1, 'after logout');
    await expectNoTokenStored(tab2, 'after logout');
    expectError(await request(w.url, 'POST', '/auth/refresh', { json: { refresh_token: current.value } }), 401, 'invalid_refresh_token');
    expectError(await request(w.url, 'POST', '/auth/refresh', { json: { refresh_token: cookie.value } }), 401, 'invalid_refresh_token');
    await tab2.reload();
    await waitText(tab2, 'status', /Not logged in/);

    // 8. Log in again with the form.
    await tab2.fill('input[name=email]', email);
    await tab2.fill('input[name=password]', PASSWORD);
    await tab2.click('[data-testid=login]');
    await waitText(tab2, 'who', new RegExp(email.replace(/[.]/g, '\\.')));
    await waitText(tab1, 'who', new RegExp(email.replace(/[.]/g, '\\.')));
    await expectNoTokenStored(tab2, 'after login');
    // …and the logged-in page survives a reload with its items.
    await tab2.reload();
    await waitText(tab2, 'who', new RegExp(email.replace(/[.]/g, '\\.')));
    await waitText(tab2, 'items', /Written in Chromium/);
    await expectNoTokenStored(tab2, 'after login and reload');

    // 9. The client module served by Gatehouse imports into a page of another origin, and is
    //    the file of the @gatehouse/client package the site was built with.
    const served = await tab1.evaluate(async (g) => {
      const mod = await import(`${g}/client/gatehouse.js`);
      return typeof mod.createClient;
    }, gatehouse);
    assert.equal(served, 'function');
    const servedText = await (await fetch(`${w.url}/client/gatehouse.js`)).text();
    assert.equal(servedText, readFileSync(path.join(EXAMPLE, 'node_modules', '@gatehouse', 'client', 'gatehouse.js'), 'utf8'));
    assert.deepEqual(pageErrors, []);
    await context.close();
  });

  test('passkeys: register on the site, log out, sign in without an email, reload; a removed credential fails cleanly', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const pageErrors = [];
    page.on('pageerror', (e) => pageErrors.push(e));
    // The ceremonies' requests and answers, to record a real authenticator's test vector.
    const exchanged = {};
    page.on('requestfinished', async (r) => {
      const m = /\/auth\/webauthn\/(register|login)\/(options|verify)$/.exec(r.url());
      if (m) exchanged[`${m[1]}_${m[2]}`] = { request: r.postDataJSON(), response: await (await r.response())?.json().catch(() => null) };
    });
    // Chromium's virtual authenticator over CDP: a platform authenticator (internal transport)
    // with resident keys and user verification, answering on its own.
    const cdp = await context.newCDPSession(page);
    await cdp.send('WebAuthn.enable', { enableUI: false });
    const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: {
        protocol: 'ctap2',
        transport: 'internal',
        hasResidentKey: true,
        hasUserVerification: true,
        isUserVerified: true,
        automaticPresenceSimulation: true,
      },
    });

    // 1. Sign up with a password, then add a passkey.
    await page.goto(`${siteUrl}/`);
    await waitText(page, 'status', /Not logged in/);
    const email = `passkey-${Date.now()}@example.com`;
    const emailRe = new RegExp(email.replace(/[.]/g, '\\.'));
    await page.fill('input[name=email]', email);
    await page.fill('input[name=password]', PASSWORD);
    await page.click('[data-testid=signup]');
    await waitText(page, 'who', emailRe);
    await page.click('[data-testid=passkey-register]');
    await waitText(page, 'message', /passkey added: This browser/);
    const userId = await w.db.prepare('SELECT id FROM users WHERE email = ?').bind(email).first('id');
    const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    assert.equal(credentials.length, 1);
    assert.equal(credentials[0].isResidentCredential, true);
    assert.equal(Buffer.from(credentials[0].userHandle, 'base64').toString(), userId, 'the user handle is the user id');
    const credentialId = Buffer.from(credentials[0].credentialId, 'base64').toString('base64url');
    const stored = await w.db.prepare('SELECT credential_id, user_id, algorithm FROM passkeys WHERE user_id = ?').bind(userId).first();
    assert.equal(stored.credential_id, credentialId);

    // 2. Log out; sign in with the passkey, no email typed; reload and stay signed in.
    await page.click('[data-testid=logout]');
    await waitText(page, 'status', /Not logged in/);
    // A fresh page: the form still held the email typed at sign-up.
    await page.reload();
    await waitText(page, 'status', /Not logged in/);
    assert.equal(await page.inputValue('input[name=email]'), '', 'nothing typed');
    await page.click('[data-testid=passkey-login]');
    await waitText(page, 'who', emailRe);
    await expectNoTokenStored(page, 'after a passkey sign-in');
    await page.reload();
    await waitText(page, 'who', emailRe);
    await expectNoTokenStored(page, 'after a passkey sign-in and reload');
    const after = (await cdp.send('WebAuthn.getCredentials', { authenticatorId })).credentials[0];
    const row = await w.db.prepare('SELECT sign_count, last_used_at FROM passkeys WHERE credential_id = ?').bind(credentialId).first();
    assert.equal(row.sign_count, after.signCount, 'the stored counter is the authenticator\'s');
    assert.ok(row.last_used_at > 0);
    const logins = await w.db.prepare("SELECT detail FROM audit_events WHERE kind = 'login_succeeded' AND subject_user_id = ?").bind(userId).all();
    assert.equal(logins.results.filter((e) => JSON.parse(e.detail ?? '{}').method === 'passkey').length, 1);
    if (process.env.GATEHOUSE_RECORD_WEBAUTHN) {
      // Recorded once into tests/vectors/ for the native verification tests.
      writeFileSync(process.env.GATEHOUSE_RECORD_WEBAUTHN, `${JSON.stringify({ rp_id: 'localhost', origin: siteUrl, user_id: userId, ...exchanged }, null, 2)}\n`);
    }

    // 3. The passkey removed on the server (another device): the sign-in fails with its code.
    await page.click('[data-testid=logout]');
    await waitText(page, 'status', /Not logged in/);
    await w.db.prepare('UPDATE passkeys SET credential_id = ?1 WHERE credential_id = ?2').bind(`moved-${credentialId}`, credentialId).run();
    await page.click('[data-testid=passkey-login]');
    await waitText(page, 'message', /passkey_unknown/);
    await waitText(page, 'status', /Not logged in/);
    await w.db.prepare('UPDATE passkeys SET credential_id = ?1 WHERE credential_id = ?2').bind(credentialId, `moved-${credentialId}`).run();

    // 4. A second run with the credential removed from the authenticator: the browser finds no
    //    passkey, the page says so, nobody is signed in, nothing reaches the verification.
    await cdp.send('WebAuthn.removeCredential', { authenticatorId, credentialId: credentials[0].credentialId });
    const verifies = Object.keys(exchanged).length;
    delete exchanged.login_verify;
    await page.click('[data-testid=passkey-login]');
    await waitText(page, 'message', /NotAllowedError/);
    await waitText(page, 'status', /Not logged in/);
    assert.equal(exchanged.login_verify, undefined, 'no verification was sent');
    assert.ok(verifies >= 4);
    await page.reload();
    await waitText(page, 'status', /Not logged in/);
    assert.deepEqual(pageErrors, []);
    await context.close();
  });
  test('TOTP: turn it on at /account (QR code, secret, recovery codes), log in with a code; a wrong code, a recovery code once, turn it off', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const pageErrors = [];
    page.on('pageerror', (e) => pageErrors.push(e));
    const logins = [];
    page.on('request', (r) => {
      if (r.method() === 'POST' && r.url() === `${gatehouse}/auth/login`) logins.push(r.postDataJSON());
    });

    // 1. Sign up, open the account page: TOTP is off.
    await page.goto(`${siteUrl}/`);
    await waitText(page, 'status', /Not logged in/);
    const email = `totp-${Date.now()}@example.com`;
    const emailRe = new RegExp(email.replace(/[.]/g, '\\.'));
    await page.fill('input[name=email]', email);
    await page.fill('input[name=password]', PASSWORD);
    await page.click('[data-testid=signup]');
    await waitText(page, 'who', emailRe);
    await page.click('[data-testid=nav-account]');
    await waitText(page, 'account-email', emailRe);
    await waitText(page, 'mfa-status', /^\s*Off\s*$/);

    // 2. Turning it on needs the password: a wrong one is refused; the right one shows the QR
    //    code (the server's SVG as an <img> data: URL, nothing of it inserted into the page) and
    //    the secret.
    await page.fill('input[name=mfa-password]', 'not the password at all');
    await page.click('[data-testid=totp-on]');
    await waitText(page, 'mfa-message', /invalid_credentials/);
    assert.equal(await page.$('[data-testid=totp-secret]'), null);
    await page.fill('input[name=mfa-password]', PASSWORD);
    const [startAnswer] = await Promise.all([
      page.waitForResponse((r) => r.url() === `${gatehouse}/auth/mfa/totp/start`),
      page.click('[data-testid=totp-on]'),
    ]);
    assert.equal(startAnswer.status(), 200);
    const started = await startAnswer.json();
    await waitText(page, 'totp-secret', /^[A-Z2-7]{16,}$/);
    const secret = (await page.textContent('[data-testid=totp-secret]')).trim();
    assert.equal(secret, started.secret);
    await page.waitForFunction(() => {
      const img = document.querySelector('[data-testid=totp-qr]');
      return img?.complete && img.naturalWidth > 0;
    }, null, { timeout: 15_000 });
    const src = await page.getAttribute('[data-testid=totp-qr]', 'src');
    const prefix = 'data:image/svg+xml;base64,';
    assert.ok(src.startsWith(prefix), src.slice(0, 40));
    assert.equal(Buffer.from(src.slice(prefix.length), 'base64').toString('utf8'), started.qr_svg, 'the image is the server\'s QR code');
    assert.match(started.qr_svg, /^<svg[\s>]/);
    assert.equal(await page.$$eval('svg', (els) => els.length), 0, 'no SVG element inserted into the page');

    // 3. A wrong code is refused; a code of the current step enrolls it and shows the 10
    //    recovery codes, once.
    await page.fill('input[name=totp-code]', wrongCode(secret));
    await page.click('[data-testid=totp-confirm]');
    await waitText(page, 'mfa-message', /invalid_otp/);
    await waitText(page, 'mfa-status', /^\s*Off\s*$/);
    const confirmStep = stepNow();
    await page.fill('input[name=totp-code]', totp(secret, confirmStep));
    await page.click('[data-testid=totp-confirm]');
    await waitText(page, 'mfa-status', /On \(10 recovery codes left\)/);
    const recovery = await page.$$eval('[data-testid=recovery-code]', (els) => els.map((e) => e.textContent.trim()));
    assert.equal(recovery.length, 10);
    for (const code of recovery) assert.match(code, /^[a-z2-7]{5}-[a-z2-7]{5}$/);
    assert.equal(new Set(recovery).size, 10);
    assert.equal(await page.$('[data-testid=totp-secret]'), null, 'the secret is no longer shown');
    const userId = await w.db.prepare('SELECT id FROM users WHERE email = ?').bind(email).first('id');
    const row = await w.db.prepare('SELECT secret_sealed, pending_sealed, last_step FROM mfa_totp WHERE user_id = ?').bind(userId).first();
    assert.ok(row.secret_sealed && !row.secret_sealed.includes(secret) && row.pending_sealed === null, 'enrolled, sealed');
    await expectNoTokenStored(page, 'after enrolling TOTP');

    // 4. Log out (the account page sends home) and log in: the password alone asks for the code.
    const logInUntilCode = async () => {
      await page.fill('input[name=email]', email);
      await page.fill('input[name=password]', PASSWORD);
      await page.click('[data-testid=login]');
      await page.waitForSelector('[data-testid=otp]', { timeout: 15_000 });
      await waitText(page, 'message', /Enter the code/);
      await waitText(page, 'status', /Not logged in/);
    };
    const enterCode = async (code) => {
      await page.fill('[data-testid=otp]', code);
      await page.click('[data-testid=login]');
    };
    await page.click('[data-testid=account-logout]');
    await page.waitForURL(`${siteUrl}/`);
    await waitText(page, 'status', /Not logged in/);
    await logInUntilCode();
    assert.deepEqual(logins.at(-1), { email, password: PASSWORD });

    // 5. A wrong code shows invalid_otp and keeps asking; a code of a later step than the one
    //    used to enroll (each step counts once; ±1 step is accepted) signs in.
    await enterCode(wrongCode(secret));
    await waitText(page, 'message', /invalid_otp/);
    await waitText(page, 'status', /Not logged in/);
    const loginStep = Math.max(stepNow(), confirmStep + 1);
    assert.ok(loginStep <= stepNow() + 1, 'a step the server accepts now');
    await enterCode(totp(secret, loginStep));
    await waitText(page, 'who', emailRe);
    assert.deepEqual(logins.at(-1), { email, password: PASSWORD, otp: totp(secret, loginStep) });
    await expectNoTokenStored(page, 'after a login with a code');

    // 6. A reload stays signed in (the refresh cookie; no code asked).
    await page.reload();
    await waitText(page, 'who', emailRe);
    assert.equal(await page.$('[data-testid=otp]'), null);

    // 7. A recovery code signs in once.
    await page.click('[data-testid=logout]');
    await waitText(page, 'status', /Not logged in/);
    await logInUntilCode();
    await enterCode(recovery[0]);
    await waitText(page, 'who', emailRe);
    await page.click('[data-testid=logout]');
    await waitText(page, 'status', /Not logged in/);
    await logInUntilCode();
    await enterCode(recovery[0]);
    await waitText(page, 'message', /invalid_otp/);
    await waitText(page, 'status', /Not logged in/);
    await enterCode(recovery[1].toUpperCase());
    await waitText(page, 'who', emailRe);

    // 8. Turned off with the password, a login needs the password only. (Logins of this
    //    account so far: 8, under RATE_LIMIT_LOGIN_PER_ACCOUNT's default 10.)
    await page.click('[data-testid=nav-account]');
    await waitText(page, 'mfa-status', /On \(8 recovery codes left\)/);
    await page.fill('input[name=mfa-password]', PASSWORD);
    await page.click('[data-testid=totp-off]');
    await waitText(page, 'mfa-status', /^\s*Off\s*$/);
    await page.click('[data-testid=account-logout]');
    await page.waitForURL(`${siteUrl}/`);
    await waitText(page, 'status', /Not logged in/);
    await page.fill('input[name=email]', email);
    await page.fill('input[name=password]', PASSWORD);
    await page.click('[data-testid=login]');
    await waitText(page, 'who', emailRe);
    assert.equal(await page.$('[data-testid=otp]'), null);
    // The audit trail names each login's second factor.
    const events = await w.db.prepare("SELECT detail FROM audit_events WHERE subject_user_id = ? AND kind = 'login_succeeded' ORDER BY rowid").bind(userId).all();
    const factors = events.results.map((e) => JSON.parse(e.detail ?? '{}')?.mfa).filter(Boolean);
    assert.deepEqual(factors, ['totp', 'recovery_code', 'recovery_code']);
    assert.deepEqual(pageErrors, []);
    await context.close();
  });
});
