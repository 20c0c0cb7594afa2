/**
 * Build arguments scoped as Docker scopes them:
 *
 * - ARGs before the first FROM are *global*: visible to FROM lines only. Their
 *   value is the build arg of the same name when given, else their default.
 * - Inside a stage nothing is visible until declared: `ARG NAME=default` takes
 *   the build arg when given, else the default; `ARG NAME` takes the build arg,
 *   else the global ARG's value, else stays unset. Each stage starts over.
 * - ENV beats ARG in substitution; RUN sees ENV plus the declared ARGs that
 *   ENV does not shadow (ARGs are never written to the image config).
 * - The platform ARGs buildkit predefines (`TARGETPLATFORM`, `TARGETOS`,
 *   `TARGETARCH`, `TARGETVARIANT`, `BUILDPLATFORM`, `BUILDOS`, `BUILDARCH`,
 *   `BUILDVARIANT`) are global without a declaration, and need `ARG NAME` in a stage.
 */
import { hostPlatform } from '../images/oci.ts';
import { processWord, splitWords, type Variables } from './substitute.ts';

/** The automatic platform ARGs for this node (build and target platform are the host's). */
export function platformArgs(): Map<string, string> {
  const p = hostPlatform();
  const platform = `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
  const out = new Map<string, string>();
  for (const prefix of ['TARGET', 'BUILD']) {
    out.set(`${prefix}PLATFORM`, platform);
    out.set(`${prefix}OS`, p.os);
    out.set(`${prefix}ARCH`, p.architecture);
    out.set(`${prefix}VARIANT`, p.variant ?? '');
  }
  return out;
}

/** Splits `ARG` arguments into declarations (`NAME` or `NAME=default`, several allowed). */
export function parseArgDeclarations(args: string, escape = '\\'): { name: string; default?: string }[] {
  return splitWords(args, escape).map((w) => {
    const eq = w.indexOf('=');
    return eq < 0 ? { name: w } : { name: w.slice(0, eq), default: w.slice(eq + 1) };
  });
}

/** The global ARG scope: build args, global declarations, and which build args were used. */
export class GlobalArgs {
  private readonly values = new Map<string, string | undefined>();
  /** Build arg names some ARG declared (for Docker's "not consumed" warning). */
  readonly consumed = new Set<string>();

  constructor(readonly buildArgs: Readonly<Record<string, string>>, private readonly escape = '\\') {
    for (const [k, v] of platformArgs()) this.values.set(k, v);
  }

  /** Declares `ARG` words before the first FROM; defaults may use earlier global ARGs. */
  declare(args: string): void {
    for (const d of parseArgDeclarations(args, this.escape)) {
      const name = processWord(d.name, this.visible(), this.escape);
      const def = d.default === undefined ? undefined : processWord(d.default, this.visible(), this.escape);
      const given = Object.hasOwn(this.buildArgs, name) ? this.buildArgs[name] : undefined;
      if (given !== undefined) this.consumed.add(name);
      this.values.set(name, given ?? def);
    }
  }

  /** Variables a FROM line sees. */
  visible(): Variables {
    const out = new Map<string, string>();
    for (const [k, v] of this.values) if (v !== undefined) out.set(k, v);
    return out;
  }

  /** The global value of `name`: declared (or predefined) and set; else undefined. */
  valueOf(name: string): string | undefined {
    return this.values.get(name);
  }

  /** Build args no ARG declared, sorted. */
  unconsumed(): string[] {
    return Object.keys(this.buildArgs).filter((k) => !this.consumed.has(k)).sort();
  }
}

/** One stage's ARG and ENV state. Mutated by the builder as it walks the stage. */
export class StageVars {
  /** Declared ARGs in declaration order; undefined: declared but unset. */
  readonly args = new Map<string, string | undefined>();
  /** The image config's Env, in order (inherited from the base image, then ENV). */
  readonly env = new Map<string, string>();

  constructor(private readonly global: GlobalArgs, baseEnv: readonly string[] = [], private readonly escape = '\\') {
    for (const kv of baseEnv) {
      const i = kv.indexOf('=');
      if (i > 0) this.env.set(kv.slice(0, i), kv.slice(i + 1));
    }
  }

  /** Declares `ARG` words inside the stage. */
  declare(args: string): { name: string; value: string | undefined }[] {
    const out: { name: string; value: string | undefined }[] = [];
    for (const d of parseArgDeclarations(args, this.escape)) {
      const name = processWord(d.name, this.substitution(), this.escape);
      const def = d.default === undefined ? undefined : processWord(d.default, this.substitution(), this.escape);
      const given = Object.hasOwn(this.global.buildArgs, name) ? this.global.buildArgs[name] : undefined;
      if (given !== undefined) this.global.consumed.add(name);
      const value = given ?? def ?? (d.default === undefined ? this.global.valueOf(name) : undefined);
      this.args.set(name, value);
      out.push({ name, value });
    }
    return out;
  }

  /** Variables for substitution in this stage: declared ARGs, overridden by ENV. */
  substitution(): Variables {
    const out = new Map<string, string>();
    for (const [k, v] of this.args) if (v !== undefined) out.set(k, v);
    for (const [k, v] of this.env) out.set(k, v);
    return out;
  }

  /** Env as `K=V` lines for the image config. */
  envList(): string[] {
    return [...this.env].map(([k, v]) => `${k}=${v}`);
  }

  /** ARGs a RUN gets in its environment (set and not shadowed by ENV), as `K=V`, declaration order. */
  runArgs(): string[] {
    return [...this.args].filter(([k, v]) => v !== undefined && !this.env.has(k)).map(([k, v]) => `${k}=${v!}`);
  }
}
