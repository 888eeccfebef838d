// Rubies of rbenv ($RBENV_ROOT/versions/*, ~/.rbenv by default) and rvm ($rvm_path/rubies/*, ~/.rvm by default).
import path from 'node:path';
import { envOf, homeOf, installs } from './dirs.ts';
import type { RuntimeSource } from './source.ts';

export const rbenvSource: RuntimeSource = {
  name: 'rbenv',
  candidates: (o) => installs('ruby', path.join(envOf(o).RBENV_ROOT || path.join(homeOf(o), '.rbenv'), 'versions'), ['bin/ruby'], 'rbenv'),
};

export const rvmSource: RuntimeSource = {
  name: 'rvm',
  candidates: (o) => installs('ruby', path.join(envOf(o).rvm_path || path.join(homeOf(o), '.rvm'), 'rubies'), ['bin/ruby'], 'rvm'),
};
