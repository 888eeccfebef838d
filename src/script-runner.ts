// A runner for an interpreter whose harness is one script: `<interpreter> <harness> <config.json>`.

import type { Runner, RuntimeName } from './types.ts';

export function scriptRunner(runtime: RuntimeName, language: string, harness: string): Runner {
  return {
    runtime,
    language,
    async prepare(_c, ctx) {
      return { argv: [ctx.runtime.executable, harness] };
    },
  };
}
