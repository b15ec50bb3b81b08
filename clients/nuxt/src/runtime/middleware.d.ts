import type { defineNuxtRouteMiddleware } from '#app';

declare const middleware: ReturnType<typeof defineNuxtRouteMiddleware>;
export default middleware;
