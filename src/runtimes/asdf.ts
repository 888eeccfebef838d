// asdf and mise install dirs: <data>/installs/<plugin>/<version>/bin/<exe> for python, ruby and node.
import path from 'node:path';
import { dataHome, envOf, homeOf, installs } from './dirs.ts';
import type { Candidate, RuntimeSource, SourceOptions } from './source.ts';

function pluginInstalls(root: string, tool: string): Candidate[] {
  const i = path.join(root, 'installs');
  return [
    ...installs('python', path.join(i, 'python'), ['bin/python3', 'bin/python'], tool),
    ...installs('ruby', path.join(i, 'ruby'), ['bin/ruby'], tool),
    ...installs('node', path.join(i, 'nodejs'), ['bin/node'], tool),
    ...installs('node', path.join(i, 'node'), ['bin/node'], tool),
  ];
}

export const asdfSource: RuntimeSource = {
  name: 'asdf',
  candidates: (o: SourceOptions) => pluginInstalls(envOf(o).ASDF_DATA_DIR || path.join(homeOf(o), '.asdf'), 'asdf'),
};

export const miseSource: RuntimeSource = {
  name: 'mise',
  candidates: (o: SourceOptions) => pluginInstalls(envOf(o).MISE_DATA_DIR || path.join(dataHome(o), 'mise'), 'mise'),
};
