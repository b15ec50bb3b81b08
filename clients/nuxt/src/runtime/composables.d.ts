import type { Gatehouse } from './state';

/**
 * The app's Gatehouse: the user, `loggedIn`, `login`, `logout`, `register`, and `fetch` through
 * Gatehouse with automatic refresh. The same object as `$gatehouse`.
 */
export declare function useGatehouse(): Gatehouse;
