// Type-level tests of the package (checked by `tsc --noEmit -p clients/js`, never run): the
// import goes through package.json's `exports`, as in a site that installed @gatehouse/client.
import { createClient, GatehouseError } from '@gatehouse/client';
import type { ClientOptions, GatehouseClient, SessionState, User } from '@gatehouse/client';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function expectType<T extends true>(_: T) {}

const options: ClientOptions = { baseUrl: 'https://auth.example.com', restore: false };
const gh: GatehouseClient = createClient(options);
expectType<Equal<typeof gh.user, User | null>>(true);
expectType<Equal<typeof gh.ready, Promise<User | null>>>(true);
expectType<Equal<ReturnType<typeof gh.login>, Promise<User>>>(true);
expectType<Equal<ReturnType<typeof gh.fetch>, Promise<Response>>>(true);
expectType<Equal<ReturnType<typeof gh.getAccessToken>, Promise<string | null>>>(true);

const off: () => void = gh.onChange((state: SessionState) => {
  const roles: string[] = state.user ? state.user.roles : [];
  void roles;
});
off();

export async function usage(): Promise<string> {
  try {
    const user = await gh.login({ email: 'a@example.com', password: 'secret secret' });
    await gh.register({ email: user.email, password: 'another secret', name: 'A' });
    const res = await gh.fetch('/cms/content/items/posts', { method: 'GET' });
    return String(res.status);
  } catch (err) {
    if (err instanceof GatehouseError) return `${err.status} ${err.code}`;
    throw err;
  }
}

export async function secondFactor(): Promise<number> {
  const enrollment = await gh.enrollTotp({ password: 'secret secret' });
  const uri: string = enrollment.otpauthUri;
  const { recoveryCodes } = await gh.confirmTotp({ otp: '123456' });
  const status = await gh.mfaStatus();
  await gh.login({ email: 'a@example.com', password: 'secret secret', otp: recoveryCodes[0] });
  await gh.removeTotp({ password: 'secret secret' });
  await gh.login({ email: 'a@example.com', password: 'secret secret', passkey: true });
  await gh.removeTotp({ passkey: true });
  return uri.length + status.recoveryCodesLeft + (await gh.regenerateRecoveryCodes({ password: 'x' })).recoveryCodes.length;
}

// @ts-expect-error the password or a passkey, not both
void gh.removeTotp({ password: 'x', passkey: true });
// @ts-expect-error confirmTotp needs the code
void gh.confirmTotp({});
// @ts-expect-error baseUrl is required
createClient({});
// @ts-expect-error login needs a password
void gh.login({ email: 'a@example.com' });
