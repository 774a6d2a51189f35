/** Builds and runs the Rust side of the interop tests (tests/interop, binary `wsp-interop`). */
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
  const fromEnv = process.env['WSP_INTEROP_BIN'];
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  const args = ['build', '--quiet', '-p', 'wsp-interop', '--message-format=json', ...(release ? ['--release'] : [])];
  const build = spawnSync('cargo', args, {
    cwd: REPO,
    encoding: 'utf8',
    timeout: 15 * 60_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (build.status !== 0) throw new Error(`cargo build -p wsp-interop failed:\n${build.stderr}`);
  for (const line of build.stdout.split('\n')) {
    if (!line.startsWith('{')) continue;
    const msg = JSON.parse(line) as { reason?: string; target?: { name?: string }; executable?: string | null };
    if (msg.reason === 'compiler-artifact' && msg.target?.name === 'wsp-interop' && typeof msg.executable === 'string') {
      return msg.executable;
    }
  }
  throw new Error('cargo did not report the wsp-interop executable');
}

/** A running `wsp-interop` with its stdout collected line by line. */
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
