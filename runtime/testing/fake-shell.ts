/**
 * A tiny interpreter for the commands `FakeRuntimeService` "runs", so the fake's
 * processes behave like the real ones in the conformance suite. Vocabulary:
 *
 * - `sh -c SCRIPT` where SCRIPT is statements separated by `;` or newlines:
 *   `echo WORDS [>&2]`, `sleep SECONDS`, `exit N`, `trap 'exit N' SIG...`,
 *   `true`, `false`, `:`, `cat` (copies stdin), `hostname`, `env`,
 *   `while COND; do ...; done` (COND is taken as true), anything else prints
 *   `sh: X: not found` and has status 127.
 * - A bare statement as argv (`sleep 3600`, `true`, `echo hi`).
 * - Any other program runs until signalled, and exits 143 on SIGTERM, as a
 *   well-behaved server would.
 *
 * As for a real pid-namespace init, SIGTERM is ignored unless trapped; a trap
 * runs after the current statement finishes (as sh does); SIGKILL ends at once;
 * while paused nothing advances and signals other than SIGKILL wait for resume.
 */

type Stmt = { readonly kind: 'cmd'; readonly argv: string[]; readonly toStderr: boolean } | { readonly kind: 'while'; readonly body: Stmt[] };

/** What a fake process can do to the outside world. */
export interface ShellIo {
  write(stream: 'stdout' | 'stderr', text: string): void;
  /** Everything written to stdin, once it ends; undefined when there is no stdin. */
  readStdin?(): Promise<string>;
  readonly hostname: string;
  readonly env: readonly string[];
}

class Exit {
  constructor(readonly code: number) {}
}

const SIGNAL_NUMBERS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGUSR1: 10, SIGUSR2: 12, SIGTERM: 15 };

/** One running fake process. `exited` resolves with its exit code. */
export class FakeProcess {
  readonly exited: Promise<number>;
  private resolveExit!: (code: number) => void;
  private done = false;
  private paused = false;
  private resumeWaiters: (() => void)[] = [];
  private pendingSignals: string[] = [];
  private readonly traps = new Map<string, string>();
  private killTimer: (() => void) | undefined;
  private readonly daemon: boolean;

  constructor(
    argv: readonly string[],
    private readonly io: ShellIo,
  ) {
    this.exited = new Promise((r) => (this.resolveExit = r));
    const program = toProgram(argv);
    this.daemon = program === undefined;
    void this.run(program);
  }

  /** Delivers a signal (`SIGTERM`, `SIGKILL`, ...). */
  signal(sig: string): void {
    if (this.done) return;
    if (sig === 'SIGKILL') return this.finish(128 + 9);
    if (this.paused) {
      this.pendingSignals.push(sig);
      return;
    }
    this.deliver(sig);
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    for (const w of this.resumeWaiters.splice(0)) w();
    for (const s of this.pendingSignals.splice(0)) this.deliver(s);
  }

  /** Ends the process with `code` at once, running nothing more. */
  terminate(code: number): void {
    this.finish(code);
  }

  private deliver(sig: string): void {
    if (this.daemon) {
      if (sig === 'SIGTERM' || sig === 'SIGINT') this.finish(128 + (SIGNAL_NUMBERS[sig] ?? 15));
      return;
    }
    if (this.traps.has(sig)) this.pendingSignals.push(sig);
    // untrapped: ignored, as for any pid-namespace init
  }

  private finish(code: number): void {
    if (this.done) return;
    this.done = true;
    this.killTimer?.();
    this.resolveExit(code);
  }

  private async run(program: Stmt[] | undefined): Promise<void> {
    if (program === undefined) return; // a daemon: runs until signalled
    try {
      const status = await this.runAll(program);
      this.finish(status);
    } catch (e) {
      if (e instanceof Exit) this.finish(e.code);
      else this.finish(2);
    }
  }

  private async runAll(stmts: Stmt[]): Promise<number> {
    let status = 0;
    for (const s of stmts) {
      await this.checkpoint();
      if (s.kind === 'while') {
        for (;;) {
          await this.runAll(s.body);
          // a body without sleep must not starve the event loop
          await new Promise((r) => setImmediate(r));
        }
      }
      status = await this.runCmd(s.argv, s.toStderr);
    }
    await this.checkpoint();
    return status;
  }

  /** Waits out a pause and runs pending traps; throws `Exit` when a trap exits. */
  private async checkpoint(): Promise<void> {
    if (this.done) throw new Exit(-1);
    while (this.paused) await new Promise<void>((r) => this.resumeWaiters.push(r));
    if (this.done) throw new Exit(-1);
    for (const sig of this.pendingSignals.splice(0)) {
      const action = this.traps.get(sig);
      if (action === undefined) continue;
      const m = /^\s*exit\s+(\d+)\s*$/.exec(action);
      if (m) throw new Exit(Number(m[1]));
    }
  }

  private async runCmd(argv: string[], toStderr: boolean): Promise<number> {
    const [cmd = '', ...args] = argv;
    const out = (text: string): void => this.io.write(toStderr ? 'stderr' : 'stdout', text);
    switch (cmd) {
      case 'echo':
        out(`${args.join(' ')}\n`);
        return 0;
      case 'sleep': {
        const seconds = args[0] === 'infinity' ? Infinity : Number(args[0]);
        if (!Number.isFinite(seconds) && seconds !== Infinity) return 1;
        await this.sleep(seconds * 1000);
        return 0;
      }
      case 'exit':
        throw new Exit(args[0] === undefined ? 0 : Number(args[0]) & 0xff);
      case 'trap': {
        const [action = '', ...sigs] = args;
        for (const s of sigs) this.traps.set(s.startsWith('SIG') ? s : `SIG${s}`, action);
        return 0;
      }
      case 'true':
      case ':':
        return 0;
      case 'false':
        return 1;
      case 'cat':
        out((await this.io.readStdin?.()) ?? '');
        return 0;
      case 'hostname':
        out(`${this.io.hostname}\n`);
        return 0;
      case 'env':
        out(this.io.env.map((e) => `${e}\n`).join(''));
        return 0;
      default:
        this.io.write('stderr', `sh: ${cmd}: not found\n`);
        return 127;
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (ms === Infinity) {
        this.killTimer = resolve;
        return;
      }
      const t = setTimeout(() => {
        this.killTimer = undefined;
        resolve();
      }, ms);
      this.killTimer = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }
}

const BUILTINS = new Set(['echo', 'sleep', 'exit', 'true', 'false', ':', 'cat', 'hostname', 'env', 'trap']);

function toProgram(argv: readonly string[]): Stmt[] | undefined {
  const [cmd = '', ...rest] = argv;
  const base = cmd.split('/').pop() ?? cmd;
  if (base === 'sh' && rest[0] === '-c' && rest[1] !== undefined) return parseScript(rest[1]);
  if (base === 'sh' && rest.length === 0) return []; // no stdin: exits at once
  if (BUILTINS.has(base)) return [{ kind: 'cmd', argv: [base, ...rest], toStderr: false }];
  return undefined;
}

/** Parses the supported subset of sh into statements. */
export function parseScript(script: string): Stmt[] {
  const tokens = tokenize(script);
  let i = 0;
  const parseSeq = (until?: string): Stmt[] => {
    const out: Stmt[] = [];
    let words: string[] = [];
    let toStderr = false;
    const flush = (): void => {
      if (words.length) out.push({ kind: 'cmd', argv: words, toStderr });
      words = [];
      toStderr = false;
    };
    while (i < tokens.length) {
      const t = tokens[i++]!;
      if (t.sep) {
        flush();
        continue;
      }
      if (words.length === 0 && until !== undefined && t.text === until && !t.quoted) return out;
      if (words.length === 0 && t.text === 'while' && !t.quoted) {
        while (i < tokens.length && !(tokens[i]!.text === 'do' && !tokens[i]!.quoted)) i++;
        i++;
        out.push({ kind: 'while', body: parseSeq('done') });
        continue;
      }
      if (!t.quoted && (t.text === '>&2' || t.text === '1>&2')) {
        toStderr = true;
        continue;
      }
      words.push(t.text);
    }
    flush();
    return out;
  };
  return parseSeq();
}

function tokenize(s: string): { text: string; quoted: boolean; sep: boolean }[] {
  const out: { text: string; quoted: boolean; sep: boolean }[] = [];
  let cur = '';
  let quoted = false;
  let inWord = false;
  const push = (): void => {
    if (inWord) out.push({ text: cur, quoted, sep: false });
    cur = '';
    quoted = false;
    inWord = false;
  };
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === "'" || c === '"') {
      const end = s.indexOf(c, i + 1);
      cur += s.slice(i + 1, end < 0 ? s.length : end);
      quoted = true;
      inWord = true;
      i = end < 0 ? s.length : end;
    } else if (c === ';' || c === '\n') {
      push();
      out.push({ text: c, quoted: false, sep: true });
    } else if (c === ' ' || c === '\t') {
      push();
    } else {
      cur += c;
      inWord = true;
    }
  }
  push();
  return out;
}
