// Every CPython pyenv installed: $PYENV_ROOT/versions/*/bin/python3 (or bin/python: 2.x), ~/.pyenv by default.
import path from 'node:path';
import { envOf, homeOf, installs } from './dirs.ts';
import type { RuntimeSource } from './source.ts';

export const pyenvSource: RuntimeSource = {
  name: 'pyenv',
  candidates: (o) => installs('python', path.join(envOf(o).PYENV_ROOT || path.join(homeOf(o), '.pyenv'), 'versions'), ['bin/python3', 'bin/python'], 'pyenv'),
};
