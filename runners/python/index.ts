// The python runtime: one interpreter per cell runs harness.py, which forks in-process with os.fork() in a loop.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { scriptRunner } from '../../src/script-runner.ts';
import type { RuntimeSpec } from '../../src/runtimes/spec.ts';

const runner = scriptRunner('python', 'python', fileURLToPath(new URL('./harness.py', import.meta.url)), {
  // harness.py runs on CPython 3.6 (measured: pyenv 3.6.15; cases using 3.7+ APIs such as os.register_at_fork say so
  // in their own result); an older 3.x is listed, and its cells say why they skip
  skip: (v) => (/^3\.[0-5]\b/.test(v) ? `harness.py needs CPython 3.6 or newer; this is ${v}` : null),
});

export const pythonSpec: RuntimeSpec = {
  ...runner,
  order: 2,
  hostPackages: { python3: 'python3' },
  find: {
    names: ['python3'],
    // version, then the real executable; a free-threaded build (Py_GIL_DISABLED: sys.abiflags has "t", as in
    // python3.14t) gets a "t" suffix, 3.14.0t, so its columns say so. sys only: platform/sysconfig cost an import.
    query: ['-c', "import sys,os;print(sys.version.split()[0]+('t' if 't' in getattr(sys,'abiflags','') else ''));print(os.path.realpath(sys.executable))"],
    refuse: (v) => (/^[012]\./.test(v) ? `Python ${v} cannot run the harness (harness.py is Python 3)` : null),
    install: 'apt-get install python3',
    debian: { packages: ['python3'], exe: '/usr/bin/python3' },
    glibcCopy: {
      verify: ['-c', 'import sys, os, socket, ssl, ctypes, subprocess, math\nprint(sys.executable)\nprint(open("/proc/self/maps").read())'],
      // a venv next to the copy: CPython finds its stdlib from `home`, sys.executable stays the copy
      prepare(dir, rt) {
        writeFileSync(path.join(dir, 'pyvenv.cfg'), `home = ${path.dirname(rt.executable)}\ninclude-system-site-packages = true\nversion = ${rt.version.replace(/t$/, '')}\n`);
      },
    },
  },
};

export const pythonRunner = pythonSpec;
