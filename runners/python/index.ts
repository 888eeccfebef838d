// The python runner: one interpreter per cell runs harness.py, which forks in-process with os.fork() in a loop.
import { fileURLToPath } from 'node:url';
import { scriptRunner } from '../../src/script-runner.ts';

export const pythonRunner = scriptRunner('python', 'python', fileURLToPath(new URL('./harness.py', import.meta.url)));
