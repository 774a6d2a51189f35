/**
 * Builds and runs the Rust side of the interop tests (tests/interop, binary `wsp-interop`) and
 * the Rust relay (`wsp-relay`).
 */
import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { sleep } from './helpers.js';

const REPO = fileURLToPath(new URL('../../../../../', import.meta.url));

/**
 * The path of the `wsp-interop` binary: `WSP_INTEROP_BIN` if set, else built with cargo (the
 * path comes from cargo's JSON messages, so `CARGO_TARGET_DIR` is honoured); `release` builds
 * the release profile (for the benchmark).
 */
export function interopBinary({ release = false }: { release?: boolean } = {}): string {
  return cargoBinary('wsp-interop', 'wsp-interop', 'WSP_INTEROP_BIN', release);
}

/** The path of the `wsp-relay` binary (PROTOCOL.md §11): `WSP_RELAY_BIN` if set, else built with cargo like {@link interopBinary}. */
export function relayBinary(): string {
  return cargoBinary('wsp-relay', 'wsp-relay', 'WSP_RELAY_BIN', false);
}

/** Builds `bin` of cargo package `pkg` (unless the environment names it) and returns its path. */
function cargoBinary(pkg: string, bin: string, envVar: string, release: boolean): string {
  const fromEnv = process.env[envVar];
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  const args = ['build', '--quiet', '-p', pkg, '--bin', bin, '--message-format=json', ...(release ? ['--release'] : [])];
  const build = spawnSync('cargo', args, {
    cwd: REPO,
    encoding: 'utf8',
    timeout: 15 * 60_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (build.status !== 0) throw new Error(`cargo build -p ${pkg} failed:\n${build.stderr}`);
  for (const line of build.stdout.split('\n')) {
    if (!line.startsWith('{')) continue;
    const msg = JSON.parse(line) as { reason?: string; target?: { name?: string }; executable?: string | null };
    if (msg.reason === 'compiler-artifact' && msg.target?.name === bin && typeof msg.executable === 'string') {
      return msg.executable;
    }
  }
  throw new Error(`cargo did not report the ${bin} executable`);
}

/** A running `wsp-interop` (or `wsp-relay`) with its stdout collected line by line. */
export class RustProcess {
  readonly lines: string[] = [];
  readonly exited: Promise<number | null>;
  private readonly child: ChildProcessWithoutNullStreams;
  private stderr = '';

  constructor(bin: string, args: string[]) {
    this.child = spawn(bin, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let partial = '';
    this.child.stdout.setEncoding('utf8');
    this.child.stdout.on('data', (chunk: string) => {
      partial += chunk;
      const parts = partial.split('\n');
      partial = parts.pop() ?? '';
      this.lines.push(...parts);
    });
    this.child.stderr.setEncoding('utf8');
    this.child.stderr.on('data', (chunk: string) => {
      this.stderr += chunk;
    });
    this.exited = new Promise((resolve) => this.child.on('exit', (code) => resolve(code)));
  }

  get output(): string {
    return `stdout:\n${this.lines.join('\n')}\nstderr:\n${this.stderr}`;
  }

  count(line: string): number {
    return this.lines.filter((l) => l === line).length;
  }

  /** Waits until `line` has been printed `times` times in all (bounded). */
  async waitFor(line: string, times = 1, ms = 5000): Promise<void> {
    const end = Date.now() + ms;
    while (this.count(line) < times) {
      if (Date.now() > end) throw new Error(`\`${line}\` not printed ${times}× within ${ms} ms\n${this.output}`);
      await sleep(5);
    }
  }

  /** The port a server printed (`listening <port>`). */
  async port(ms = 10_000): Promise<number> {
    const end = Date.now() + ms;
    for (;;) {
      const line = this.lines.find((l) => l.startsWith('listening '));
      if (line !== undefined) return Number(line.slice('listening '.length));
      if (Date.now() > end) throw new Error(`no \`listening\` line within ${ms} ms\n${this.output}`);
      await sleep(5);
    }
  }

  /** The first printed line that starts with `prefix`, without the prefix (bounded wait). */
  async lineAfter(prefix: string, ms = 10_000): Promise<string> {
    const end = Date.now() + ms;
    for (;;) {
      const line = this.lines.find((l) => l.startsWith(prefix));
      if (line !== undefined) return line.slice(prefix.length);
      if (Date.now() > end) throw new Error(`no \`${prefix}\` line within ${ms} ms\n${this.output}`);
      await sleep(5);
    }
  }

  /** Sends SIGINT (the relay's Ctrl-C: it closes every connection with 1001); kills it if it has not exited in time. */
  async interrupt(ms = 5000): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGINT');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), ms);
    await this.exited;
    clearTimeout(timer);
  }

  /** Closes stdin (a server then shuts down gracefully); kills it if it has not exited in time. */
  async stop(ms = 3000): Promise<void> {
    this.child.stdin.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), ms);
    await this.exited;
    clearTimeout(timer);
  }

  /** Kills it at once (a crash, for the reconnect test). */
  async kill(): Promise<void> {
    this.child.kill('SIGKILL');
    await this.exited;
  }
}

/** A running `wsp-relay` and the URL it listens on. */
export interface RelayProcess {
  readonly process: RustProcess;
  /** `ws://127.0.0.1:<port>/` as the relay printed it. */
  readonly url: string;
}

/**
 * Starts `wsp-relay` on `listen` (default 127.0.0.1 with a free port) and reads its URL from its
 * first line (`wsp-relay listening on ws://…/`). `extra` adds command-line options.
 */
export async function startRelay(bin: string, listen = '127.0.0.1:0', extra: string[] = []): Promise<RelayProcess> {
  const process = new RustProcess(bin, ['--listen', listen, ...extra]);
  const url = await process.lineAfter('wsp-relay listening on ');
  return { process, url };
}
