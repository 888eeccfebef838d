// uv's managed Pythons: $UV_PYTHON_INSTALL_DIR, else ~/.local/share/uv/python/<cpython-3.x.y-...>/bin/python3.
import path from 'node:path';
import { dataHome, envOf, installs } from './dirs.ts';
import type { RuntimeSource } from './source.ts';

export const uvSource: RuntimeSource = {
  name: 'uv',
  candidates: (o) => installs('python', envOf(o).UV_PYTHON_INSTALL_DIR || path.join(dataHome(o), 'uv', 'python'), ['bin/python3'], 'uv'),
};
