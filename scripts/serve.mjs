#!/usr/bin/env node
// Runs the built Gatehouse worker in workerd (through Miniflare) with a fresh, migrated local D1.
//
//   node scripts/serve.mjs [--port 8790] [--var NAME=VALUE ...] [--selftest] [--no-migrate]
//                          [--wrangler-vars] [--log]
//
//   --port N          listen on 127.0.0.1:N (default 8790; 0 picks a free port)
//   --var NAME=VALUE  a string binding (repeatable); secrets such as JWT_SIGNING_KEY too
//   --selftest        serve build-selftest/ instead of build/
//   --no-migrate      leave D1 empty (no schema)
//   --wrangler-vars   also bind wrangler.toml's [vars] (under the --var values)
//   --log             echo the worker's console output
//   --build-dir DIR   serve DIR/worker/shim.mjs (default build/, or build-selftest/)
//
// Prints `gatehouse listening on http://127.0.0.1:PORT` once ready and runs until SIGINT or
// SIGTERM; the database lives in a temporary directory that is removed on exit.

import path from 'node:path';
import { generateSigningKey, startWorker } from '../tests/support/worker.mjs';

function usage(message) {
  if (message) console.error(`serve: ${message}`);
  console.error(
    'usage: node scripts/serve.mjs [--port N] [--var NAME=VALUE ...] [--selftest] [--no-migrate] [--wrangler-vars] [--log] [--build-dir DIR]',
  );
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { port: 8790, vars: {}, selftest: false, migrate: true, wranglerVars: false, log: false };
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i];
    let inline;
    const m = /^(--port|--var|--build-dir)=(.*)$/s.exec(arg);
    if (m) [, arg, inline] = m;
    const value = () => {
      if (inline !== undefined) return inline;
      if (i + 1 >= argv.length) usage(`${arg} needs a value`);
      return argv[++i];
    };
    if (arg === '--port') {
      const v = value();
      if (!/^\d+$/.test(v) || Number(v) > 65535) usage(`bad port: ${v}`);
      opts.port = Number(v);
    } else if (arg === '--var') {
      const v = value();
      const eq = v.indexOf('=');
      if (eq <= 0) usage(`--var wants NAME=VALUE, got: ${v.split('=')[0]}`);
      opts.vars[v.slice(0, eq)] = v.slice(eq + 1);
    } else if (arg === '--selftest') {
      opts.selftest = true;
    } else if (arg === '--no-migrate') {
      opts.migrate = false;
    } else if (arg === '--wrangler-vars') {
      opts.wranglerVars = true;
    } else if (arg === '--build-dir') {
      opts.dir = path.resolve(value());
    } else if (arg === '--log') {
      opts.log = true;
    } else if (arg === '-h' || arg === '--help') {
      usage();
    } else {
      usage(`unknown argument: ${arg}`);
    }
  }
  return opts;
}

const opts = parseArgs(process.argv.slice(2));
if (!opts.vars.JWT_SIGNING_KEY) {
  opts.vars.JWT_SIGNING_KEY = generateSigningKey().d;
  console.error('serve: no JWT_SIGNING_KEY given; using a throwaway key generated for this run');
}

const started = startWorker(opts);
let stopping = false;
async function shutdown(signal) {
  if (stopping) return;
  stopping = true;
  let worker;
  try {
    worker = await started;
  } catch {
    return; // start failed; reported below
  }
  try {
    await worker.stop();
    process.exit(0);
  } catch (err) {
    console.error(`serve: error while stopping after ${signal}: ${err?.stack ?? err}`);
    process.exit(1);
  }
}
function handleSignals() {
  // Miniflare installs SIGINT/SIGTERM handlers that kill workerd and exit with 130/143 at once;
  // replace them so that a signal disposes Miniflare properly and ends with status 0.
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.removeAllListeners(signal);
    process.on(signal, () => shutdown(signal));
  }
}
handleSignals();

let worker;
try {
  worker = await started;
} catch (err) {
  console.error(`serve: ${err?.message ?? err}`);
  process.exit(1);
}
handleSignals();
if (!stopping) console.log(`gatehouse listening on ${worker.url}`);
