import type { Plugin } from '#app';
import type { Gatehouse } from './state';

declare const plugin: Plugin<{ gatehouse: Gatehouse }>;
export default plugin;
