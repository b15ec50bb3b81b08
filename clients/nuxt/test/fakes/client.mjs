// A scriptable @gatehouse/client for the unit tests. `createClient` makes a FakeClient unless a
// test installs another factory (e.g. the real client with a fake Gatehouse behind `fetch`).
import { GatehouseError } from '../../../js/gatehouse.js';

export { GatehouseError };

export const created = [];
let factory = (options) => new FakeClient(options);

export function useFactory(f) {
  factory = f || ((options) => new FakeClient(options));
}

export function createClient(options) {
  const client = factory(options);
  created.push({ options, client });
  return client;
}

export const ALICE = Object.freeze({ id: 'usr_alice', email: 'alice@example.com', name: 'Alice', roles: ['user'] });
export const EDITOR = Object.freeze({ id: 'usr_ed', email: 'ed@example.com', name: null, roles: ['user', 'editor'] });

/** Behaves like the real client from the outside: state, events, actions; records calls. */
export class FakeClient {
  constructor(options) {
    this.options = options;
    this.user = null;
    this.calls = [];
    this.listeners = new Set();
    this.nextUser = ALICE;
    this.failWith = null;
    this.ready = new Promise((resolve) => {
      /** Ends the restore of the refresh cookie's session: `user` or none. */
      this.restore = (user = null) => {
        if (user) this.change(user, 'restore');
        else this.emit('restore');
        resolve(user);
      };
    });
  }

  get authenticated() {
    return this.user !== null;
  }

  /** A session change, as a login, logout or refresh in this or another tab makes it. */
  change(user, reason) {
    this.user = user;
    this.emit(reason);
  }

  emit(reason) {
    for (const fn of this.listeners) fn({ user: this.user, authenticated: this.user !== null, reason });
  }

  async act(name, input) {
    this.calls.push([name, input]);
    await new Promise((r) => setTimeout(r, 1));
    if (this.failWith) throw this.failWith;
  }

  async login(input) {
    await this.act('login', input);
    this.change(this.nextUser, 'login');
    return this.user;
  }

  async register(input) {
    await this.act('register', input);
    this.change({ ...this.nextUser, email: input.email, name: input.name ?? null }, 'login');
    return this.user;
  }

  async loginWithPasskey(input) {
    await this.act('loginWithPasskey', input);
    this.change(this.nextUser, 'login');
    return this.user;
  }

  async registerPasskey(input) {
    await this.act('registerPasskey', input);
    return { id: 'pk_1', name: input?.name ?? 'Passkey' };
  }

  async mfaStatus() {
    await this.act('mfaStatus');
    return { available: true, enrolled: false, enrolledAt: null, pending: false, recoveryCodesLeft: 0 };
  }

  async enrollTotp(input) {
    await this.act('enrollTotp', input);
    return { secret: 'JBSWY3DPEHPK3PXP', otpauthUri: 'otpauth://totp/Gatehouse:alice%40example.com?secret=JBSWY3DPEHPK3PXP', qrSvg: '<svg xmlns="http://www.w3.org/2000/svg"/>', expiresIn: 900 };
  }

  async confirmTotp(input) {
    await this.act('confirmTotp', input);
    return { recoveryCodes: ['aaaaa-bbbbb'] };
  }

  async removeTotp(input) {
    await this.act('removeTotp', input);
  }

  async regenerateRecoveryCodes(input) {
    await this.act('regenerateRecoveryCodes', input);
    return { recoveryCodes: ['ccccc-ddddd'] };
  }

  async logout() {
    await this.act('logout');
    this.change(null, 'logout');
  }

  async me() {
    await this.act('me');
    if (this.user) this.user = { ...this.user, name: 'Renamed' };
    return this.user;
  }

  async fetch(path, init) {
    await this.act('fetch', { path, init });
    return new Response(JSON.stringify({ path }), { status: 200, headers: { 'content-type': 'application/json' } });
  }

  refresh() {
    return Promise.resolve(null);
  }

  getAccessToken() {
    return Promise.resolve(null);
  }

  onChange(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  close() {
    this.listeners.clear();
  }
}
