// The ruby runtime: one interpreter per cell runs harness.rb, which forks in-process with Process.fork in a loop.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { scriptRunner } from '../../src/script-runner.ts';
import { writeWhole } from '../../src/util.ts';
import type { RuntimeSpec } from '../../src/runtimes/spec.ts';

/** The override that makes RbConfig.ruby name a ruby copy (Debian's ruby has a fixed bindir, no load-relative). */
export const RBCONFIG = `# forkmatrix: RUBYLIB puts this file before the real rbconfig.rb. It loads the real one, then, only when this
# process is one of forkmatrix's patchelf'd ruby copies, points bindir at the copy so RbConfig.ruby (and so
# children spawned by it) stay on the copy's glibc. Any other ruby gets its own RbConfig unchanged.
fm_dir = __dir__
real = $LOAD_PATH.map { |d| File.join(d.to_s, 'rbconfig.rb') }.find { |f| File.dirname(f) != fm_dir && File.file?(f) }
raise LoadError, 'forkmatrix rbconfig override: no real rbconfig.rb on the load path' unless real
load real
begin
  exe = File.realpath('/proc/self/exe')
  copies = File.realpath(File.join(File.dirname(fm_dir), 'runtimes')) + '/'
  RbConfig::CONFIG['bindir'] = File.dirname(exe) if exe.start_with?(copies) && File.basename(exe) == RbConfig::CONFIG['ruby_install_name'] + RbConfig::CONFIG['EXEEXT'].to_s
rescue SystemCallError
end
`;

export const rubySpec: RuntimeSpec = {
  ...scriptRunner('ruby', 'ruby', fileURLToPath(new URL('./harness.rb', import.meta.url))),
  order: 3,
  hostPackages: { ruby: 'ruby' },
  find: {
    names: ['ruby'],
    query: ['-e', 'require "rbconfig"; puts RUBY_VERSION; puts File.realpath(RbConfig.ruby)'],
    install: 'apt-get install ruby',
    debian: { packages: ['ruby'], exe: '/usr/bin/ruby' },
    glibcCopy: {
      verify: ['-e', 'require "rbconfig"; require "socket"; require "etc"; puts RbConfig.ruby; puts File.read("/proc/self/maps")'],
      // copies live in <shared>/runtimes/: the override in <shared>/rubylib points RbConfig.ruby at the copy
      env(shared) {
        const dir = path.join(shared, 'rubylib');
        writeWhole(path.join(dir, 'rbconfig.rb'), RBCONFIG, { ifChanged: true });
        return { RUBYLIB: dir };
      },
    },
  },
};

export const rubyRunner = rubySpec;
