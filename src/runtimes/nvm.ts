// Nodes of nvm ($NVM_DIR/versions/node/v*), fnm ($FNM_DIR/node-versions/v*/installation) and volta
// ($VOLTA_HOME/tools/image/node/*), each in its default place under the home directory when the variable is unset.
import path from 'node:path';
import { dataHome, envOf, homeOf, installs } from './dirs.ts';
import type { RuntimeSource } from './source.ts';

export const nvmSource: RuntimeSource = {
  name: 'nvm',
  candidates: (o) => installs('node', path.join(envOf(o).NVM_DIR || path.join(homeOf(o), '.nvm'), 'versions', 'node'), ['bin/node'], 'nvm'),
};

export const fnmSource: RuntimeSource = {
  name: 'fnm',
  candidates(o) {
    const roots = envOf(o).FNM_DIR ? [envOf(o).FNM_DIR!] : [path.join(dataHome(o), 'fnm'), path.join(homeOf(o), '.fnm')];
    return roots.flatMap((r) => installs('node', path.join(r, 'node-versions'), ['installation/bin/node'], 'fnm'));
  },
};

export const voltaSource: RuntimeSource = {
  name: 'volta',
  candidates: (o) => installs('node', path.join(envOf(o).VOLTA_HOME || path.join(homeOf(o), '.volta'), 'tools', 'image', 'node'), ['bin/node'], 'volta'),
};
