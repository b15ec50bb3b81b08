// Registers loader.mjs; imported first by the tests.
import { register } from 'node:module';

register('./loader.mjs', import.meta.url);
