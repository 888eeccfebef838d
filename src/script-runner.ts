// A runner for an interpreter whose harness is one script: `<interpreter> <harness> <config.json>`.

import type { Runner, RuntimeName } from './types.ts';

export function scriptRunner(runtime: RuntimeName, language: string, harness: string, o: { skip?(version: string): string | null } = {}): Runner {
  return {
    runtime,
    language,
    async prepare(_c, ctx) {
      const skip = o.skip?.(ctx.runtime.version);
      if (skip) return { skip };
      return { argv: [ctx.runtime.executable, harness] };
    },
  };
}
