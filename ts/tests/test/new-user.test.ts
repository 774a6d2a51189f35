/**
 * The TypeScript new-user path, outside the repository: `npm pack` of `@wsp/runtime` (its
 * prepack compiles it), a fresh Node project (`"type": "module"`) that installs the tarball, `ws`,
 * TypeScript and the type packages from npm (the local cache, `--prefer-offline`), code generated
 * from the project's own copy of `schemas/math.wsp` with the repository's `wsp-codegen`, compiled
 * by the project's `tsc` (strict, no `skipLibCheck`, no DOM library), and run with `node` against
 * the Rust server (`wsp-interop server`): typed calls, a bigint result and a stream.
 */
import assert from 'node:assert/strict';
import { type SpawnSyncOptions, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { RustProcess, interopBinary } from './rust-process.js';

const REPO = fileURLToPath(new URL('../../../../../', import.meta.url));

/** The environment without npm's `npm_*` variables: the child npm must not think it runs inside this workspace's script. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.toLowerCase().startsWith('npm_')) env[key] = value;
  }
  return env;
}

/** Runs a command to completion (bounded) and returns its stdout; throws with its output when it fails. */
function run(cmd: string, args: string[], opts: SpawnSyncOptions & { cwd: string }, timeoutMs = 5 * 60_000): string {
  const result = spawnSync(cmd, args, {
    env: cleanEnv(),
    encoding: 'utf8',
    timeout: timeoutMs,
    maxBuffer: 64 * 1024 * 1024,
    ...opts,
  });
  if (result.status !== 0) {
    throw new Error(
      `\`${cmd} ${args.join(' ')}\` in ${opts.cwd} failed (${result.status ?? result.signal ?? result.error?.message})\n` +
        `stdout:\n${String(result.stdout)}\nstderr:\n${String(result.stderr)}`,
    );
  }
  return String(result.stdout);
}

/** The `wsp-codegen` CLI built from this checkout (the path from cargo's JSON messages); `WSP_CODEGEN_BIN` overrides it. */
function codegenBinary(): string {
  const fromEnv = process.env['WSP_CODEGEN_BIN'];
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  const out = run('cargo', ['build', '--quiet', '-p', 'wsp-codegen', '--bin', 'wsp-codegen', '--message-format=json'], { cwd: REPO }, 15 * 60_000);
  for (const line of out.split('\n')) {
    if (!line.startsWith('{')) continue;
    const msg = JSON.parse(line) as { reason?: string; target?: { name?: string }; executable?: string | null };
    if (msg.reason === 'compiler-artifact' && msg.target?.name === 'wsp-codegen' && typeof msg.executable === 'string') {
      return msg.executable;
    }
  }
  throw new Error('cargo did not report the wsp-codegen executable');
}

const MAIN_TS = `import { WebSocket } from '@wsp/runtime/node';
import { Client } from '@wsp/runtime';
import * as math from './wsp/math.js';

const url = process.argv[2];
if (url === undefined) throw new Error('usage: node dist/main.js URL');
const client = new Client(url, { WebSocket });
await client.connect();
const m = new math.MathClient(client);
const sum: bigint = await m.add([1n, 2n, 3n]);
console.log(\`add \${sum}\`);
const counted: number[] = [];
for await (const n of m.count(1, 3)) counted.push(n);
console.log(\`count \${counted.join(',')}\`);
await client.close();
`;

const TSCONFIG = {
  compilerOptions: {
    target: 'ES2022',
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    lib: ['ES2022'],
    types: ['node'],
    strict: true,
    outDir: 'dist',
    rootDir: 'src',
  },
  include: ['src/**/*.ts'],
};

test('a new Node project installs the packed runtime, generates code and calls the Rust server', { timeout: 20 * 60_000 }, async (t) => {
  const started = Date.now();
  const tmp = mkdtempSync(join(tmpdir(), 'wsp-new-user-ts-'));
  let server: RustProcess | undefined;
  try {
    // 1. The package, as `npm pack` makes it from the checkout.
    run('npm', ['pack', '--silent', '--pack-destination', tmp], { cwd: join(REPO, 'ts', 'runtime') });
    const tarball = readdirSync(tmp).find((f) => f.endsWith('.tgz'));
    assert.ok(tarball !== undefined, `npm pack wrote no tarball in ${tmp}`);

    // 2. A fresh project that installs it like any package.
    const app = join(tmp, 'app');
    mkdirSync(join(app, 'schemas'), { recursive: true });
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'first-day', version: '0.0.0', private: true, type: 'module' }, null, 2));
    run(
      'npm',
      ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', join(tmp, tarball), 'ws@^8.18.0'],
      { cwd: app },
    );
    run(
      'npm',
      ['install', '--save-dev', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', 'typescript@~5.9.3', '@types/node@^20.19.0', '@types/ws@^8.18.1'],
      { cwd: app },
    );

    // 3. Its own schema, generated with the CLI, compiled with its own tsc.
    copyFileSync(join(REPO, 'schemas', 'math.wsp'), join(app, 'schemas', 'math.wsp'));
    run(codegenBinary(), ['--lang', 'ts', '-o', 'src/wsp', 'schemas/math.wsp'], { cwd: app });
    writeFileSync(join(app, 'src', 'main.ts'), MAIN_TS);
    writeFileSync(join(app, 'tsconfig.json'), JSON.stringify(TSCONFIG, null, 2));
    run(process.execPath, [join(app, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', '.'], { cwd: app });

    // 4. Typed calls against the Rust server.
    server = new RustProcess(interopBinary(), ['server']);
    const port = await server.port(60_000);
    const out = run(process.execPath, ['dist/main.js', `ws://127.0.0.1:${port}/`], { cwd: app }, 30_000);
    assert.deepEqual(out.trim().split('\n'), ['add 6', 'count 1,2,3']);
    t.diagnostic(`the TypeScript new-user path took ${Date.now() - started} ms`);
  } finally {
    await server?.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
});
