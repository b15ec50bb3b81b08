import { useNuxtApp } from '#app';

/**
 * The app's Gatehouse: the user, `loggedIn`, `login`, `logout`, `register`, and `fetch` through
 * Gatehouse with automatic refresh. The same object as `$gatehouse`.
 * @returns {import('./state').Gatehouse}
 */
export function useGatehouse() {
  return /** @type {any} */ (useNuxtApp()).$gatehouse;
}
