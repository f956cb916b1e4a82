// Which JavaScript runtime runs dfss: Node.js, Bun or Deno (each also sets process.versions.node, so Deno and Bun
// are told apart first).

export type RuntimeName = 'Node.js' | 'Bun' | 'Deno';

export interface RuntimeInfo {
  readonly name: RuntimeName;
  readonly version: string;
  /** Whether the runtime has a global Float16Array (float16 tensors then take and give one). */
  readonly float16Array: boolean;
}

export function currentRuntime(): RuntimeInfo {
  const float16Array = typeof (globalThis as { Float16Array?: unknown }).Float16Array === 'function';
  const deno = (globalThis as { Deno?: { version?: { deno?: string } } }).Deno;
  if (deno?.version?.deno !== undefined) return { name: 'Deno', version: deno.version.deno, float16Array };
  const bun = (process.versions as Record<string, string | undefined>).bun;
  if (bun !== undefined) return { name: 'Bun', version: bun, float16Array };
  return { name: 'Node.js', version: process.versions.node, float16Array };
}
