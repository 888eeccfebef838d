# frozen_string_literal: true
#
# forkmatrix harness for CRuby (2.7+): implements runners/PROTOCOL.md.
#
#   ruby harness.rb config.json
#
# Runs the case's `prelude` (top level) and `setup`, starts `threads` Ruby threads that call `loop` until a stop
# flag is set (each iteration wrapped in pressure counters), runs `precondition`, then forks again and again
# (Process.fork, seeded delays, `before_fork` right before each fork), runs `child` in each child and classifies how
# the child ended: ok / wrong / crash / hang (a hang is a child proved blocked, never merely late). Writes one JSON
# result file (atomically) and exits with exit!(0).
#
# Only `json` is loaded before the case runs; `etc` (optional: a musl-linked Ruby may lack extensions) and
# `rbconfig` are loaded when the result is written.
#
# Design notes (the why of the less obvious choices):
# - Snippets are compiled with eval(code, TOPLEVEL_BINDING, file, line) so backtraces name the YAML file and line.
#   `setup`, `loop`, `precondition`, `before_fork` and `child` are lambdas (`return` / `next false` work); `prelude`
#   runs at the top level, so its `def`s, constants and `$globals` are visible to the other snippets. The harness
#   itself lives in a module and defines no top-level locals, so snippets see a clean top-level scope.
# - Loop threads call Thread.pass after every iteration. CRuby's GVL otherwise lets a CPU-bound Ruby thread keep
#   the lock for a whole 100 ms time slice, and the forking main thread (which needs the GVL after every sleep,
#   select and waitpid) would manage only ~2 forks/s. With the pass it gets the GVL back after at most one loop
#   iteration; blocking calls in the loop release the GVL anyway.
# - Pressure: thread t sets INSIDE[t] = 1 before each loop body and INSIDE[t] = 0, ITERS[t] += 1, LAST[t] = now
#   after it (plain Array slots: the GVL orders them). A body that raises ends its thread and keeps the first error.
#   Snippets read them through inside() and iterations() (Kernel, like skip()).
# - The child is forked with the block form of Process.fork: after the block Ruby ends the child itself
#   (rb_f_fork -> rb_protect -> ruby_stop), so the parent's stack (this harness's ensure clauses) never unwinds
#   in the child, and `exit(0)` inside the block runs at_exit handlers exactly like a normal exit.
# - Each child first makes itself a process-group leader (setpgid(0, 0); the parent does the same for it, so
#   whichever runs first wins the race): the hang proof samples, and the kill reaches, everything the child started.
# - SIGCHLD: the harness traps it (below); a child inherits that trap until it execs, so the child puts back the
#   disposition the process had before the harness trapped it (Ruby's own "DEFAULT" handler) before the snippet
#   runs: spawn, backticks and nested forks in a case see what they would see in any Ruby process.
# - Output capture redirects file descriptors 1 and 2 only, through IO objects of the harness's own:
#   IO.for_fd(1, autoclose: false).reopen(w) is a dup2(w, 1). The inherited $stdout / $stderr objects are not
#   touched: their write locks and buffers are exactly what the parent's threads left behind, which is what a case
#   like "$stdout.puts in the child" must test. ($stdout.reopen(w) would also keep the object, but it flushes and
#   locks the inherited object first: the harness would be doing the case's work before the case runs.)
#   Process.fork flushes $stdout and $stderr itself (process.c prefork()); before each fork the harness also
#   flushes STDOUT and STDERR when a case has pointed $stdout / $stderr elsewhere, so text the parent left in
#   those buffers is not written a second time by every child that exits normally.
# - The child's output is kept whole up to 1 MiB (beyond that its first and last 512 KiB), and expect_output is
#   matched against all of it: a child that flushes inherited parent text (up to Ruby's 8 KiB write buffer) before
#   its own line is still judged by its own line.
# - Waiting: one IO.select on the child's output pipe and a SIGCHLD self-pipe, with the remaining time (EOF = the
#   child's last copy of the write end closed, normally because it exited), reading the output as it comes, then
#   waitpid(WNOHANG) whenever SIGCHLD arrives. No sleep loop.
# - Hang proof (PROTOCOL.md): a child still alive at the early look (once 5 children were ok) or at timeout_ms is
#   sampled twice, sample_ms apart: every process of its group (/proc/*/stat field 5), each one's thread states
#   (/proc/P/task/T/stat) and the group's CPU time. Blocked (no thread R in either sample, no CPU time between them)
#   is a hang; an exited child (zombie) is judged by its status; otherwise it is slow: sampled every
#   max(sample_ms, timeout/4) until blocked (hang), exited (judged, counted in `slow`) or hard_factor x timeout
#   (a hang whose proof says "running"). diag.proof keeps the samples, diag.blocked says "yes" or "running".
# - The first diag.max hangs are diagnosed before the kill: /proc/PID/{wchan,syscall,stack} (and the tasks, if
#   the child started threads; the processes it started), `gdb -batch -p PID -ex "thread apply all bt"` with
#   PATH=/usr/bin:/bin only and a 20 s limit, then SIGTERM: CRuby raises SignalException in the main thread if it
#   can still run Ruby code, and the child wrapper prints it with its backtrace (diag.ruby). Then SIGKILL to the
#   child's process group, and reap.
# - expect_output is compiled as a Ruby Regexp: `^` and `$` match at line boundaries (like Python's re.M), so
#   "^done$" matches a line "done" anywhere in the output.

require "json" # the only library loaded before the case runs; etc and rbconfig are loaded after the fork loop

module ForkMatrixHarness
  # Raised by skip(reason) from `prelude` / `setup`. Not a StandardError, so `rescue => e` in a snippet does not
  # swallow it.
  class Skip < Exception; end # rubocop:disable Lint/InheritException

  HARNESS_FILE = File.expand_path(__FILE__)
  HEAD_KEEP = 512 * 1024 # a child's output: its first HEAD_KEEP and last TAIL_KEEP bytes are kept
  TAIL_KEEP = 512 * 1024
  MAX_FAILURES = 5
  MAX_SLOW_EXAMPLES = 5
  MAX_PROOF_LINES = 24
  GDB_LIMIT_S = 20.0
  F_SETFL = 4 # Linux, every architecture (the fcntl extension may be missing)
  USER_HZ = 100.0 # the unit of utime/stime in /proc/P/stat on Linux (sysconf(_SC_CLK_TCK)), on every architecture
  HANG_PROOF = { "sample_ms" => 100, "early_min_ms" => 200, "early_factor" => 20, "hard_factor" => 5 }.freeze

  # The loop threads' pressure counters (see the design notes); read by inside() and iterations().
  INSIDE = []
  ITERS = []

  module_function

  def now
    Process.clock_gettime(Process::CLOCK_MONOTONIC)
  end

  def utf8(s)
    return nil if s.nil?

    s.dup.force_encoding(Encoding::UTF_8).scrub("?")
  end

  def tail(s, n)
    s.bytesize > n ? s.byteslice(s.bytesize - n, n) : s
  end

  def inside_count
    INSIDE.count(1)
  end

  def iterations_sum
    ITERS.sum
  end

  # --- facts about this process -----------------------------------------------------------------------------

  def libc_info
    path = nil
    begin
      File.foreach("/proc/self/maps") do |line|
        f = line.split(" ", 6)[5]
        next unless f

        f = f.strip
        base = File.basename(f)
        if base == "libc.so.6" || base == "libc.so" || base.match?(/\Alibc-\d+\.\d+(\.\d+)?\.so\z/) || base.match?(/\Alibc\.musl-.*\.so\.1\z/) ||
           base.match?(/\Ald-musl-.*\.so\.1\z/)
          path = f
          break
        end
      end
    rescue SystemCallError, IOError
      path = nil
    end
    self_reported = begin
      require "etc"
      defined?(Etc.confstr) && defined?(Etc::CS_GNU_LIBC_VERSION) ? Etc.confstr(Etc::CS_GNU_LIBC_VERSION) : nil
    rescue StandardError, ScriptError # LoadError: a Ruby without the etc extension
      nil
    end
    { "path" => path, "self_reported" => self_reported }
  end

  def runtime_info
    version = RUBY_VERSION.dup
    version << "p#{RUBY_PATCHLEVEL}" if defined?(RUBY_PATCHLEVEL) && RUBY_PATCHLEVEL >= 0
    exe = begin
      require "rbconfig"
      RbConfig.ruby
    rescue StandardError, ScriptError
      nil
    end
    { "name" => "ruby", "version" => version, "executable" => exe }
  end

  # Every file-backed shared object mapped into this process (deduplicated, in map order).
  def mapped_objects
    seen = {}
    File.foreach("/proc/self/maps") do |line|
      f = line.split(" ", 6)[5]
      next unless f

      f = f.strip.sub(/ \(deleted\)\z/, "")
      seen[f] = true if f.start_with?("/") && File.basename(f).include?(".so")
    end
    seen.keys
  rescue SystemCallError, IOError
    []
  end

  # --- result -----------------------------------------------------------------------------------------------

  # Facts about the process are gathered here, when no more children will be forked: loading etc or rbconfig
  # earlier would change what the case's parent has loaded.
  def write_result(path, result)
    result["libc"] ||= libc_info
    result["runtime"] ||= runtime_info
    tmp = "#{path}.tmp"
    File.open(tmp, "w") { |f| f.write(JSON.generate(result)) }
    File.rename(tmp, path)
  end

  def percentile(sorted, q)
    return nil if sorted.empty?

    idx = (q * (sorted.size - 1)).round
    sorted[idx]
  end

  # --- snippets ---------------------------------------------------------------------------------------------

  def snippet_line(cfg, key)
    l = (cfg["lines"] || {})[key].to_i
    l.positive? ? l : 1
  end

  def blank?(code)
    code.nil? || code.strip.empty?
  end

  # A lambda whose body is the snippet; its first line is `line` of `file`.
  def compile(cfg, key)
    code = cfg[key]
    return nil if blank?(code)

    src = +"lambda do\n"
    src << code
    src << "\nend\n"
    eval(src, TOPLEVEL_BINDING, cfg["file"] || "(#{key})", snippet_line(cfg, key) - 1) # rubocop:disable Security/Eval
  end

  # "Class: message" and the first frames that are not the harness's own.
  def describe_exception(e, frames = 6)
    msg = e.message.to_s
    first, rest = msg.split("\n", 2)
    line = +"#{e.class}: #{first}"
    line << " ..." if rest && !rest.strip.empty?
    bt = (e.backtrace || []).reject { |f| f.start_with?(HARNESS_FILE) }.first(frames)
    ([line] + bt.map { |f| "\tfrom #{f}" }).join("\n")
  end

  # --- hang diagnosis ---------------------------------------------------------------------------------------

  def proc_read(pid, name)
    s = File.binread("/proc/#{pid}/#{name}")
    utf8(s).strip
  rescue SystemCallError, IOError => e
    "(unreadable: #{e.class}: #{e.message})"
  end

  def run_gdb(gdb, pid)
    r, w = IO.pipe
    gpid = nil
    out = String.new(encoding: Encoding::BINARY)
    begin
      gpid = Process.spawn({ "PATH" => "/usr/bin:/bin" },
                           gdb, "-batch", "-nx", "-p", pid.to_s, "-ex", "thread apply all bt",
                           unsetenv_others: true, in: File::NULL, out: w, err: w, pgroup: true, close_others: true)
      w.close
      deadline = now + GDB_LIMIT_S
      timed_out = false
      loop do
        left = deadline - now
        if left <= 0
          timed_out = true
          break
        end
        next unless IO.select([r], nil, nil, left)

        chunk = r.read_nonblock(65_536, exception: false)
        break if chunk.nil?
        next if chunk == :wait_readable

        out << chunk
        out = tail(out, 64_000)
      end
      if timed_out
        begin
          Process.kill(:KILL, -gpid)
        rescue SystemCallError
          nil
        end
        out << "\n(gdb killed after #{GDB_LIMIT_S.to_i} s)"
      end
      utf8(tail(out, 8000))
    rescue SystemCallError, IOError => e
      "(gdb failed: #{e.class}: #{e.message})"
    ensure
      w.close unless w.closed?
      r.close unless r.closed?
      if gpid
        begin
          Process.wait(gpid)
        rescue SystemCallError
          nil
        end
      end
    end
  end


  # Where a hung child is, before it is killed: kernel view, the processes it started, then native stacks (gdb),
  # then a Ruby-level backtrace (SIGTERM makes CRuby raise SignalException in the main thread when it can still
  # run Ruby code; the child wrapper prints it with its backtrace).
  def diagnose(pid, gdb, reader)
    d = {}
    d["wchan"] = proc_read(pid, "wchan")
    d["syscall"] = proc_read(pid, "syscall")
    d["stack"] = proc_read(pid, "stack")
    tasks = begin
      Dir.children("/proc/#{pid}/task").sort_by(&:to_i)
    rescue SystemCallError
      []
    end
    if tasks.size > 1
      d["tasks"] = tasks.map { |t| "#{t} #{proc_read(pid, "task/#{t}/comm")} #{proc_read(pid, "task/#{t}/wchan")}" }.join("\n")
    end
    kids = begin
      tasks.flat_map { |t| File.read("/proc/#{pid}/task/#{t}/children").split }
    rescue SystemCallError, IOError
      []
    end
    unless kids.empty?
      d["children"] = kids.map do |k|
        st = proc_stat(k.to_i)
        "#{k} #{st ? st[0] : '?'} #{proc_read(k, 'comm')} #{proc_read(k, 'wchan')}"
      end.join("\n")
    end
    d["gdb"] = gdb && !gdb.empty? ? run_gdb(gdb, pid) : nil
    begin
      Process.kill(:TERM, pid)
      extra = String.new(encoding: Encoding::BINARY)
      reader.drain_until(now + 0.5, extra)
      d["ruby"] = extra.empty? ? "(no Ruby backtrace: SIGTERM not handled within 500 ms)" : utf8(tail(extra, 4000))
    rescue SystemCallError => e
      d["ruby"] = "(could not signal: #{e.class}: #{e.message})"
    end
    d
  end

  # --- the hang proof ---------------------------------------------------------------------------------------

  # Fields 3.. of /proc/PID/stat (index 0 = state, 2 = pgrp, 11 = utime, 12 = stime), or nil when it is gone.
  def proc_stat(pid, task = nil)
    s = File.binread(task ? "/proc/#{pid}/task/#{task}/stat" : "/proc/#{pid}/stat")
    rp = s.rindex(")") or return nil
    s.byteslice(rp + 2, s.bytesize).split(" ")
  rescue SystemCallError, IOError
    nil
  end

  # One sample of a process group: { at:, procs: [[pid, state, [thread states]]], cpu_ms:, running:, leader: }.
  # `leader` is the state of the group's leader (the child), nil when it is gone.
  def group_sample(pgid, t_fork)
    procs = []
    cpu = 0
    Dir.each_child("/proc") do |d|
      c = d.getbyte(0)
      next unless c && c >= 48 && c <= 57 # a pid

      f = proc_stat(d)
      next unless f && f[2].to_i == pgid

      threads = begin
        Dir.children("/proc/#{d}/task").sort_by(&:to_i).map { |t| (proc_stat(d, t) || ["?"])[0] }
      rescue SystemCallError
        []
      end
      procs << [d.to_i, f[0], threads]
      cpu += f[11].to_i + f[12].to_i
    end
    procs.sort_by!(&:first)
    leader = procs.find { |p| p[0] == pgid }
    { at: now, ms: ((now - t_fork) * 1000).round, procs: procs, cpu_ms: (cpu * 1000 / USER_HZ).round,
      running: procs.any? { |p| p[1] == "R" || p[2].include?("R") }, leader: leader && leader[1] }
  end

  def sample_line(s)
    ps = s[:procs].map { |pid, st, th| th.empty? ? "#{pid} #{st}" : "#{pid} #{st} [#{th.join(' ')}]" }
    "+#{s[:ms]} ms: cpu #{s[:cpu_ms]} ms; #{ps.empty? ? '(no process)' : ps.join(', ')}"
  end

  def exited?(s)
    s[:leader] == "Z" || s[:leader] == "X"
  end

  def blocked?(a, b)
    !a[:running] && !b[:running] && b[:cpu_ms] <= a[:cpu_ms]
  end

  # Reads a child's output pipe, keeping its first HEAD_KEEP and last TAIL_KEEP bytes.
  class Reader
    attr_reader :eof, :total

    BUF = String.new(capacity: 65_536, encoding: Encoding::BINARY) # one read buffer, reused (no garbage per fork)

    def initialize(io)
      @io = io
      @head = String.new(encoding: Encoding::BINARY)
      @tail = nil
      @total = 0
      @eof = false
    end

    # Read what is there without blocking; returns false at EOF. `sink` (optional) gets everything read.
    def pump(sink = nil)
      loop do
        chunk = @io.read_nonblock(65_536, BUF, exception: false)
        if chunk.nil?
          @eof = true
          return false
        end
        return true if chunk == :wait_readable

        sink << chunk if sink && sink.bytesize < 65_536
        keep(chunk)
      end
    rescue IOError, SystemCallError
      @eof = true
      false
    end

    def keep(chunk)
      @total += chunk.bytesize
      room = HEAD_KEEP - @head.bytesize
      if room.positive?
        if chunk.bytesize <= room
          @head << chunk
          return
        end
        @head << chunk.byteslice(0, room)
        chunk = chunk.byteslice(room, chunk.bytesize - room)
      end
      @tail ||= String.new(encoding: Encoding::BINARY)
      @tail << chunk
      @tail = @tail.byteslice(@tail.bytesize - TAIL_KEEP, TAIL_KEEP) if @tail.bytesize > 2 * TAIL_KEEP
    end

    # What was kept: everything up to HEAD_KEEP + TAIL_KEEP bytes, else the head, a marker line and the tail.
    def output
      return @head unless @tail

      t = ForkMatrixHarness.tail(@tail, TAIL_KEEP)
      omitted = @total - @head.bytesize - t.bytesize
      omitted.positive? ? "#{@head}\n[... #{omitted} bytes not kept ...]\n#{t}" : @head + t
    end

    def drain_until(deadline, sink = nil)
      until @eof
        left = deadline - ForkMatrixHarness.now
        break if left <= 0
        break unless IO.select([@io], nil, nil, left)

        pump(sink)
      end
    end
  end

  # Watches one child: reads its output, reaps it, proves a hang. One object per fork.
  class Watch
    attr_reader :status, :proof, :blocked, :slow

    def initialize(pid, r, wake_r, reader, t_fork)
      @pid = pid
      @r = r
      @wake_r = wake_r
      @reader = reader
      @t_fork = t_fork
      @status = nil
      @proof = []
      @blocked = nil # "yes" | "running" when proved a hang
      @slow = false
    end

    # Waits until the child exited (returns its status) or `deadline` passed (returns nil), reading its output.
    def await(deadline)
      loop do
        if @reader.eof
          _, st = Process.wait2(@pid, Process::WNOHANG)
          return @status = st if st

          left = deadline - ForkMatrixHarness.now
          return nil if left <= 0

          @wake_r.read_nonblock(256, exception: false) if IO.select([@wake_r], nil, nil, left)
        else
          left = deadline - ForkMatrixHarness.now
          return nil if left <= 0

          ready = IO.select([@r, @wake_r], nil, nil, left)
          next unless ready

          @reader.pump if ready[0].include?(@r)
          next unless ready[0].include?(@wake_r)

          @wake_r.read_nonblock(256, exception: false)
          _, st = Process.wait2(@pid, Process::WNOHANG)
          if st
            @reader.pump
            return @status = st
          end
        end
      end
    end

    def sample
      s = ForkMatrixHarness.group_sample(@pid, @t_fork)
      @proof << ForkMatrixHarness.sample_line(s) if @proof.size < MAX_PROOF_LINES
      if ForkMatrixHarness.exited?(s) || s[:leader].nil? # a zombie (or gone): judged by its exit status
        _, @status = Process.wait2(@pid, s[:leader].nil? ? Process::WNOHANG : 0)
        @reader.pump if @status
      end
      s
    end

    # Two samples `sample_ms` apart, waiting for the exit meanwhile: :exited, :blocked or :running.
    def look(sample_s)
      a = sample
      return :exited if @status
      return :exited if await(ForkMatrixHarness.now + sample_s)

      b = sample
      return :exited if @status

      @last = b
      ForkMatrixHarness.blocked?(a, b) ? :blocked : :running
    end

    # The whole wait for one child (runners/PROTOCOL.md "hang"); afterwards status is set, or blocked is.
    def run(timeout_s, early_s, hp)
      sample_s = hp["sample_ms"].to_f / 1000.0
      if early_s && early_s < timeout_s
        return if await(@t_fork + early_s)
        return @blocked = "yes" if look(sample_s) == :blocked
        return if @status
      end
      return if await(@t_fork + timeout_s)

      case look(sample_s)
      when :exited then return
      when :blocked then return @blocked = "yes"
      end
      @slow = true
      interval = [sample_s, timeout_s / 4.0].max
      hard = @t_fork + [hp["hard_factor"].to_f, 1.0].max * timeout_s
      prev = @last
      loop do
        return if await([ForkMatrixHarness.now + interval, hard].min)

        s = sample
        return if @status
        return @blocked = "yes" if ForkMatrixHarness.blocked?(prev, s)
        return @blocked = "running" if ForkMatrixHarness.now >= hard

        prev = s
      end
    end
  end

  # --- the fork loop ----------------------------------------------------------------------------------------

  def signame(sig)
    n = Signal.signame(sig)
    n ? "SIG#{n}" : "signal #{sig}"
  rescue StandardError
    "signal #{sig}"
  end

  def main(argv)
    cfg_path = argv[0] or abort("usage: ruby harness.rb config.json")
    cfg = JSON.parse(File.read(cfg_path))
    result_path = cfg["result"] or abort("config has no `result` path")
    run(cfg, result_path)
  end

  def base_result(cfg)
    r = {
      "forks" => 0, "ok" => 0, "hang" => 0, "crash" => 0, "wrong" => 0,
      "elapsed_ms" => 0.0, "child_ms" => { "median" => nil, "p99" => nil },
      "first_failures" => [], "libc" => nil, "runtime" => nil,
      "threads_started" => 0, "pressure" => nil, "slow" => 0, "slow_examples" => [], "mapped" => [],
      "skipped" => nil, "error" => nil,
    }
    r["environ"] = ENV.to_h if cfg["env_check"]
    r
  end

  # Text a case left in STDOUT / STDERR while $stdout / $stderr point elsewhere (Process.fork flushes only those):
  # flushed in the parent, so children that exit normally do not write it again.
  def flush_std
    [STDOUT, STDERR].each do |io|
      next if io.equal?($stdout) || io.equal?($stderr)

      begin
        io.flush
      rescue StandardError
        nil
      end
    end
  end

  def kill_group(pid)
    Process.kill(:KILL, -pid)
  rescue SystemCallError
    begin
      Process.kill(:KILL, pid)
    rescue SystemCallError
      nil
    end
  end

  def run(cfg, result_path)
    result = base_result(cfg)
    live = nil # pid of a child not yet reaped
    begin
      phase = "prelude"
      begin
        unless blank?(cfg["prelude"])
          eval(cfg["prelude"], TOPLEVEL_BINDING, cfg["file"] || "(prelude)", snippet_line(cfg, "prelude")) # rubocop:disable Security/Eval
        end
        phase = "compiling setup"
        setup = compile(cfg, "setup")
        phase = "compiling loop"
        loop_fn = compile(cfg, "loop")
        phase = "compiling precondition"
        precondition = compile(cfg, "precondition")
        phase = "compiling before_fork"
        before_fork = compile(cfg, "before_fork")
        phase = "compiling child"
        child_fn = compile(cfg, "child") || -> {}
        phase = "compiling expect_output"
        expect = cfg["expect_output"] ? Regexp.new(cfg["expect_output"]) : nil
        phase = "setup"
        setup&.call
      rescue Skip => e
        result["skipped"] = e.message
        write_result(result_path, result)
        return
      rescue Exception => e # rubocop:disable Lint/RescueException
        result["error"] = "#{phase} raised #{describe_exception(e, 4)}"
        write_result(result_path, result)
        return
      end

      n_threads = cfg["threads"].to_i
      stop = false
      INSIDE.replace(Array.new(n_threads, 0))
      ITERS.replace(Array.new(n_threads, 0))
      inside = INSIDE
      iters = ITERS
      last_done = Array.new(n_threads)
      errors = Array.new(n_threads)
      running = 0
      n_threads.times do |idx|
        Thread.new do
          Thread.current.report_on_exception = false
          Thread.current.name = "fm-loop-#{idx}" if Thread.current.respond_to?(:name=)
          running += 1
          if loop_fn.nil?
            sleep
          else
            until stop
              inside[idx] = 1
              begin
                loop_fn.call
              rescue Exception => e # rubocop:disable Lint/RescueException
                inside[idx] = 0
                errors[idx] = describe_exception(e, 3)
                break # a raising body ends its thread (PROTOCOL.md): no pressure from it any more
              end
              inside[idx] = 0
              iters[idx] += 1
              last_done[idx] = Process.clock_gettime(Process::CLOCK_MONOTONIC)
              Thread.pass
            end
          end
        end
        result["threads_started"] += 1
      end
      # On a busy machine a new thread can take a while to be scheduled: wait (at most 2 s) until every thread runs,
      # so the first forks already meet the contention the case is about; then the warm-up.
      t_wait = now
      sleep(0.001) while running < n_threads && now - t_wait < 2.0
      warm = cfg["warmup_ms"].to_f
      sleep(warm / 1000.0) if warm.positive?

      if precondition
        failed = begin
          false.equal?(precondition.call) ? "returned false" : nil
        rescue Exception => e # rubocop:disable Lint/RescueException
          raise if e.is_a?(SystemExit)

          describe_exception(e, 3)
        end
        if failed
          stop = true
          result["error"] = "precondition failed: #{failed}"
          result["mapped"] = mapped_objects
          write_result(result_path, result)
          return
        end
      end
      result["mapped"] = mapped_objects
      base_iters = iters.dup

      forks = [cfg["forks"].to_i, 1].max
      seconds = cfg["seconds"].to_f
      timeout = [cfg["timeout_ms"].to_f, 1.0].max / 1000.0
      hp = HANG_PROOF.merge(cfg["hang_proof"] || {})
      early_min = hp["early_min_ms"].to_f / 1000.0
      early_factor = hp["early_factor"].to_f
      max_delay = [cfg["max_delay_us"].to_i, 0].max
      rng = Random.new(cfg["seed"].to_i)
      fail_fast = cfg["fail_fast"] ? true : false
      exit_normally = cfg["exit"] == "exit"
      diag = cfg["diag"] || {}
      gdb = diag["gdb"]
      diag_max = diag["max"].to_i
      diagnosed = 0
      latencies = [] # of ok children, kept sorted (the early look needs their median)
      failures = result["first_failures"]
      forks_inside = 0

      # Created once: in each child, fd1.reopen(w) / fd2.reopen(w) are dup2(w, 1) / dup2(w, 2). Allocating them in
      # the child instead costs page faults there (copy-on-write), which are slow on some kernels (gVisor).
      fd1 = IO.for_fd(1, autoclose: false)
      fd2 = IO.for_fd(2, autoclose: false)

      # SIGCHLD wakes the fork loop through a self-pipe, so the parent waits for the child's output and its exit in
      # one IO.select, never in a sleep loop (Ruby 3.1 has no pidfd). Each child puts back `chld_before`.
      wake_r, wake_w = IO.pipe
      harness_pid = Process.pid
      chld_before = trap("CHLD") { wake_w.write_nonblock("x", exception: false) if Process.pid == harness_pid }
      chld_before = "DEFAULT" if chld_before.nil?

      t_start = now
      i = 0
      while i < forks && (i.zero? || now - t_start < seconds)
        delay = max_delay.positive? ? rng.rand(0..max_delay) : 0
        if delay > 50
          sleep(delay / 1_000_000.0)
        elsif delay.positive? # short delays spin: a sleep costs more than the delay itself
          until_t = Process.clock_gettime(Process::CLOCK_MONOTONIC) + delay / 1_000_000.0
          nil while Process.clock_gettime(Process::CLOCK_MONOTONIC) < until_t
        end

        if before_fork
          begin
            before_fork.call
          rescue Exception => e # rubocop:disable Lint/RescueException
            raise if e.is_a?(SystemExit)

            result["error"] = "before_fork raised #{describe_exception(e, 3)}"
            break
          end
        end
        flush_std
        r, w = IO.pipe
        # Ruby 3 makes pipes O_NONBLOCK; the child's stdout/stderr must be an ordinary blocking pipe (programs it
        # execs inherit it). F_SETFL ignores the access mode, so 0 clears O_NONBLOCK (and nothing else is set).
        w.fcntl(F_SETFL, 0)
        forks_inside += 1 if inside.include?(1)
        t_fork = now
        begin
          pid = Process.fork do
            # --- the child ---
            err = nil
            begin
              Process.setpgid(0, 0)
              trap("CHLD", chld_before)
              r.close
              fd1.reopen(w)
              fd2.reopen(w)
              err = fd2
              w.close
            rescue Exception # rubocop:disable Lint/RescueException
              exit!(97)
            end
            ok = begin
              !false.equal?(child_fn.call)
            rescue SystemExit
              raise # the snippet called exit(n): end like that (at_exit handlers run)
            rescue Exception => e # rubocop:disable Lint/RescueException
              begin
                err.syswrite("#{describe_exception(e)}\n")
              rescue Exception # rubocop:disable Lint/RescueException
                nil
              end
              exit!(1)
            end
            unless ok
              begin
                err.syswrite("child returned false\n")
              rescue Exception # rubocop:disable Lint/RescueException
                nil
              end
              exit!(1)
            end
            exit_normally ? exit(0) : exit!(0)
          end
        ensure
          w.close
        end
        live = pid
        begin
          Process.setpgid(pid, pid) # the child does it too; whichever comes first
        rescue SystemCallError
          nil
        end
        result["forks"] += 1
        reader = Reader.new(r)
        begin
          early = latencies.size >= 5 ? [early_min, early_factor * latencies[latencies.size / 2] / 1000.0].max : nil
          watch = Watch.new(pid, r, wake_r, reader, t_fork)
          watch.run(timeout, early, hp)
          t_done = now
          elapsed = ((t_fork - t_start) * 1000).round(3)
          if watch.blocked
            d = { "proof" => watch.proof.join("\n"), "blocked" => watch.blocked }
            reader.pump
            seen = reader.output.dup # what the child printed before it was found hung (the diagnosis adds more)
            if diagnosed < diag_max
              diagnosed += 1
              d.merge!(diagnose(pid, gdb, reader))
            end
            kill_group(pid)
            Process.wait(pid)
            live = nil
            result["hang"] += 1
            if failures.size < MAX_FAILURES
              out = utf8(tail(seen, 1000))
              ms = ((t_done - t_fork) * 1000).round
              msg = if watch.blocked == "yes"
                      +"blocked #{ms} ms after fork: no thread of its process group ran and it used no CPU time " \
                       "between two samples (diag.proof)"
                    else
                      +"still running #{ms} ms after fork (#{hp['hard_factor']}x the #{(timeout * 1000).round} ms " \
                       "timeout), never blocked: a spin or livelock (diag.proof)"
                    end
              msg << ": #{out}" unless out.strip.empty?
              failures << { "kind" => "hang", "iteration" => i, "elapsed_ms" => elapsed,
                            "message" => msg, "signal" => nil, "signame" => nil, "status" => nil, "diag" => d }
            end
          else
            live = nil
            status = watch.status
            if watch.slow
              result["slow"] += 1
              if result["slow_examples"].size < MAX_SLOW_EXAMPLES
                result["slow_examples"] << { "iteration" => i, "ms" => ((t_done - t_fork) * 1000).round }
              end
            end
            out = reader.output
            if status.signaled?
              sig = status.termsig
              result["crash"] += 1
              if failures.size < MAX_FAILURES
                msg = +"killed by #{signame(sig)} (#{sig})"
                bug = utf8(out)[/^.*\[BUG\].*$/]
                msg << "\n#{bug}" if bug
                msg << "\n#{utf8(tail(out, 1000))}" unless out.empty?
                failures << { "kind" => "crash", "iteration" => i, "elapsed_ms" => elapsed,
                              "message" => msg, "signal" => sig, "signame" => signame(sig), "status" => nil }
              end
            elsif status.exitstatus != 0
              result["wrong"] += 1
              if failures.size < MAX_FAILURES
                text = utf8(tail(out, 1000))
                msg = text.strip.empty? ? "exited with status #{status.exitstatus}" : text
                failures << { "kind" => "wrong", "iteration" => i, "elapsed_ms" => elapsed,
                              "message" => msg, "signal" => nil, "signame" => nil, "status" => status.exitstatus }
              end
            elsif expect && !expect.match?(utf8(out))
              result["wrong"] += 1
              if failures.size < MAX_FAILURES
                failures << { "kind" => "wrong", "iteration" => i, "elapsed_ms" => elapsed,
                              "message" => "output did not match /#{cfg['expect_output']}/ (#{reader.total} bytes): " \
                                           "#{utf8(tail(out, 900)).inspect}",
                              "signal" => nil, "signame" => nil, "status" => 0 }
              end
            else
              result["ok"] += 1
              ms = (t_done - t_fork) * 1000.0
              latencies.insert(latencies.bsearch_index { |x| x >= ms } || latencies.size, ms)
            end
          end
        ensure
          r.close unless r.closed?
        end
        i += 1
        break if fail_fast && (result["hang"] + result["crash"] + result["wrong"]).positive?
      end
      t_end = now
      result["elapsed_ms"] = ((t_end - t_start) * 1000).round(3)
      stop = true
      result["child_ms"] = { "median" => percentile(latencies, 0.5)&.round(3), "p99" => percentile(latencies, 0.99)&.round(3) }
      result["pressure"] = {
        "window_ms" => result["elapsed_ms"],
        "threads" => Array.new(n_threads) do |t|
          { "iterations" => iters[t] - base_iters[t],
            "last_ms" => last_done[t] ? ((t_end - last_done[t]) * 1000).round(3) : nil,
            "error" => errors[t] }
        end,
        "forks_inside" => forks_inside,
        "forks_sampled" => result["forks"],
      }
      write_result(result_path, result)
    rescue Exception => e # rubocop:disable Lint/RescueException
      result["error"] = "harness: #{describe_exception(e, 4)}"
      begin
        write_result(result_path, result)
      rescue StandardError
        nil
      end
    ensure
      if live
        kill_group(live)
        begin
          Process.wait(live)
        rescue SystemCallError
          nil
        end
      end
    end
  end
end

# Helpers for snippets: skip(reason) in `prelude` / `setup` (the case cannot run here: the result says why; no fork
# happens); inside() (loop threads inside their loop body right now) and iterations() (loop iterations finished so
# far), e.g. a before_fork `Thread.pass until inside() > 0`.
module Kernel
  private

  def skip(reason = "skipped")
    raise ForkMatrixHarness::Skip, reason.to_s
  end

  def inside
    ForkMatrixHarness.inside_count
  end

  def iterations
    ForkMatrixHarness.iterations_sum
  end
end

if File.expand_path($PROGRAM_NAME) == File.expand_path(__FILE__) # (loadable without running, for benchmarks)
  begin
    ForkMatrixHarness.main(ARGV)
  rescue SystemExit
    raise
  rescue Exception => e # rubocop:disable Lint/RescueException
    warn "forkmatrix ruby harness: #{e.class}: #{e.message}"
    exit!(2)
  end
  # Do not wait for the loop threads: they may be stuck inside the case's code.
  exit!(0)
end
