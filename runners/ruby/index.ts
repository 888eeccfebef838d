// The ruby runner: one interpreter per cell runs harness.rb, which forks in-process with Process.fork in a loop.
import { fileURLToPath } from 'node:url';
import { scriptRunner } from '../../src/script-runner.ts';

export const rubyRunner = scriptRunner('ruby', 'ruby', fileURLToPath(new URL('./harness.rb', import.meta.url)));
