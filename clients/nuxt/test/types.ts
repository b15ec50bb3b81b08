// Type-level tests (checked by `tsc --noEmit -p clients/nuxt`, never run): what a site sees.
// The module is imported by its package name, through package.json's `exports`.
import type { NuxtApp, PageMeta } from '#app';
import type { MfaStatus, TotpEnrollment, User } from '@gatehouse/client';
import gatehouseModule from '@gatehouse/nuxt';
import type { Gatehouse, ModuleOptions } from '@gatehouse/nuxt';
import type { NuxtModule } from 'nuxt/schema';
import type { ComputedRef } from 'vue';
import { useGatehouse } from '../src/runtime/composables.js';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function expectType<T extends true>(_: T) {}

// nuxt.config: `gatehouse: { url }`, typed by the module's options.
expectType<Equal<typeof gatehouseModule extends NuxtModule<infer O> ? O : never, ModuleOptions>>(true);
const options: ModuleOptions = { url: 'https://auth.example.com' };
void options;
// @ts-expect-error the URL is required
const noUrl: ModuleOptions = { redirectTo: '/' };
void noUrl;

// useGatehouse() and $gatehouse are the same, typed object.
const gh = useGatehouse();
expectType<Equal<typeof gh, Gatehouse>>(true);
expectType<Equal<typeof gh.user, ComputedRef<User | null>>>(true);
expectType<Equal<typeof gh.loggedIn, ComputedRef<boolean>>>(true);
expectType<Equal<ReturnType<typeof gh.fetch>, Promise<Response>>>(true);
expectType<Equal<ReturnType<typeof gh.login>, Promise<User>>>(true);
expectType<Equal<ReturnType<typeof gh.mfaStatus>, Promise<MfaStatus>>>(true);
expectType<Equal<ReturnType<typeof gh.enrollTotp>, Promise<TotpEnrollment>>>(true);
expectType<Equal<ReturnType<typeof gh.confirmTotp>, Promise<{ recoveryCodes: string[] }>>>(true);
// @ts-expect-error the enrollment needs the password
void gh.enrollTotp({});
declare const nuxtApp: NuxtApp;
expectType<Equal<typeof nuxtApp.$gatehouse, Gatehouse>>(true);

export async function usage(): Promise<string[]> {
  await gh.whenReady();
  if (!gh.loggedIn.value) await gh.login({ email: 'a@example.com', password: 'a long password' });
  if (!gh.loggedIn.value) await gh.login({ email: 'a@example.com', password: 'a long password', otp: '123456' });
  const res = await gh.fetch('/cms/content/items/posts');
  const roles = gh.user.value?.roles ?? [];
  return res.ok && gh.hasRole(['editor', 'admin']) ? roles : [];
}

// Page meta read by the gatehouse-auth middleware.
const editorsOnly: PageMeta = { middleware: 'gatehouse-auth', gatehouse: { role: 'editor', redirectTo: '/login' } };
const anyOf: PageMeta = { gatehouse: { role: ['editor', 'admin'] } };
// @ts-expect-error a role is a string or a list of strings
const wrongRole: PageMeta = { gatehouse: { role: 5 } };
void [editorsOnly, anyOf, wrongRole];
