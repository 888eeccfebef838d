# frozen_string_literal: true
#
# forkmatrix harness for CRuby (2.7+): implements runners/PROTOCOL.md.
#
#   ruby harness.rb config.json
#
# Runs the case's `prelude` (top level) and `setup`, starts `threads` Ruby threads that call `loop` until a stop
# flag is set, then forks again and again (Process.fork, seeded delays), runs `child` in each child and classifies
# how the child ended: ok / wrong / crash / hang. Writes one JSON result file (atomically) and exits with exit!(0).
#
# Only `json` is loaded before the case runs; `etc` (optional: a musl-linked Ruby may lack extensions) and
# `rbconfig` are loaded when the result is written.
#
# Design notes (the why of the less obvious choices):
# - Snippets are compiled with eval(code, TOPLEVEL_BINDING, file, line) so backtraces name the YAML file and line.
#   `setup`, `loop` and `child` are lambdas (`return` / `next false` work); `prelude` runs at the top level, so its
#   `def`s, constants and `$globals` are visible to the other snippets. The harness itself lives in a module and
#   defines no top-level locals, so snippets see a clean top-level scope.
# - Loop threads call Thread.pass after every iteration. CRuby's GVL otherwise lets a CPU-bound Ruby thread keep
#   the lock for a whole 100 ms time slice, and the forking main thread (which needs the GVL after every sleep,
#   select and waitpid) would manage only ~2 forks/s. With the pass it gets the GVL back after at most one loop
#   iteration; blocking calls in the loop release the GVL anyway.
# - The child is forked with the block form of Process.fork: after the block Ruby ends the child itself
#   (rb_f_fork -> rb_protect -> ruby_stop), so the parent's stack (this harness's ensure clauses) never unwinds
#   in the child, and `exit(0)` inside the block runs at_exit handlers exactly like a normal exit.
# - Output capture redirects file descriptors 1 and 2 only, through IO objects of the harness's own:
#   IO.for_fd(1, autoclose: false).reopen(w) is a dup2(w, 1). The inherited $stdout / $stderr objects are not
#   touched: their write locks and buffers are exactly what the parent's threads left behind, which is what a case
#   like "$stdout.puts in the child" must test. ($stdout.reopen(w) would also keep the object, but it flushes and
#   locks the inherited object first: the harness would be doing the case's work before the case runs.)
# - Waiting: one IO.select on the child's output pipe and a SIGCHLD self-pipe, with the remaining timeout (EOF =
#   the child's last copy of the write end closed, normally because it exited), reading the output as it comes,
#   then waitpid(WNOHANG) whenever SIGCHLD arrives. No sleep loop: a child that exited while a grandchild still
#   holds the pipe is seen by its SIGCHLD, and one that closed fds 1/2 but still runs is waited for the same way
#   until the deadline.
# - A hang is diagnosed before the kill (first diag.max hangs): /proc/PID/{wchan,syscall,stack} (and the tasks, if
#   the child started threads), `gdb -batch -p PID -ex "thread apply all bt"` with PATH=/usr/bin:/bin only and a
#   20 s limit, then SIGTERM: CRuby raises SignalException in the main thread if it can still run Ruby code, and the
#   child wrapper prints it with its backtrace (diag.ruby). Then SIGKILL and reap.
# - expect_output is compiled as a Ruby Regexp: `^` and `$` match at line boundaries (like Python's re.M), so
#   "^done$" matches a line "done" anywhere in the output.
# - The result carries one key beyond PROTOCOL.md: "loop" => {iterations, errors, first_error} of the loop threads,
#   so a case whose loop raises (and so creates no contention) can be told from a real pass.

require "json" # the only library loaded before the case runs; etc and rbconfig are loaded after the fork loop

module ForkMatrixHarness
  # Raised by skip(reason) from `prelude` / `setup`. Not a StandardError, so `rescue => e` in a snippet does not
  # swallow it.
  class Skip < Exception; end # rubocop:disable Lint/InheritException

  HARNESS_FILE = File.expand_path(__FILE__)
  OUTPUT_KEEP = 4096
  MAX_FAILURES = 5
  GDB_LIMIT_S = 20.0
  F_SETFL = 4 # Linux, every architecture (the fcntl extension may be missing)

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

  # Where a hung child is, before it is killed: kernel view, then native stacks (gdb), then a Ruby-level
  # backtrace (SIGTERM makes CRuby raise SignalException in the main thread when it can still run Ruby code;
  # the child wrapper prints it with its backtrace).
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
    d["gdb"] = gdb && !gdb.empty? ? run_gdb(gdb, pid) : nil
    begin
      Process.kill(:TERM, pid)
      extra = String.new(encoding: Encoding::BINARY)
      reader.drain_until(now + 0.5, extra)
      d["ruby"] = extra.empty? ? "(no Ruby backtrace: SIGTERM not handled within 500 ms)" : utf8(tail(extra, 4000))
    rescue SystemCallError => e
      d["ruby"] = "(could not signal: #{e.message})"
    end
    d
  end

  # Reads a child's output pipe, keeping the first OUTPUT_KEEP bytes.
  class Reader
    attr_reader :output, :eof

    BUF = String.new(capacity: 65_536, encoding: Encoding::BINARY) # one read buffer, reused (no garbage per fork)

    def initialize(io)
      @io = io
      @output = String.new(encoding: Encoding::BINARY)
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
        room = OUTPUT_KEEP - @output.bytesize
        @output << (chunk.bytesize > room ? chunk.byteslice(0, room) : chunk) if room.positive?
      end
    rescue IOError, SystemCallError
      @eof = true
      false
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
      "threads_started" => 0, "skipped" => nil, "error" => nil,
    }
    r["environ"] = ENV.to_h if cfg["env_check"]
    r
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
      iterations = Array.new(n_threads, 0)
      loop_errors = Array.new(n_threads, 0)
      first_loop_error = nil
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
              begin
                loop_fn.call
                iterations[idx] += 1
              rescue Exception => e # rubocop:disable Lint/RescueException
                loop_errors[idx] += 1
                first_loop_error ||= describe_exception(e, 3)
              end
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

      forks = [cfg["forks"].to_i, 1].max
      seconds = cfg["seconds"].to_f
      timeout = [cfg["timeout_ms"].to_f, 1.0].max / 1000.0
      max_delay = [cfg["max_delay_us"].to_i, 0].max
      rng = Random.new(cfg["seed"].to_i)
      fail_fast = cfg["fail_fast"] ? true : false
      exit_normally = cfg["exit"] == "exit"
      diag = cfg["diag"] || {}
      gdb = diag["gdb"]
      diag_max = diag["max"].to_i
      diagnosed = 0
      latencies = []
      failures = result["first_failures"]

      # Created once: in each child, fd1.reopen(w) / fd2.reopen(w) are dup2(w, 1) / dup2(w, 2). Allocating them in
      # the child instead costs page faults there (copy-on-write), which are slow on some kernels (gVisor).
      fd1 = IO.for_fd(1, autoclose: false)
      fd2 = IO.for_fd(2, autoclose: false)

      # SIGCHLD wakes the fork loop through a self-pipe, so the parent waits for the child's output and its exit in
      # one IO.select, never in a sleep loop (Ruby 3.1 has no pidfd). Children inherit the handler until they exec:
      # only the harness process writes.
      wake_r, wake_w = IO.pipe
      harness_pid = Process.pid
      trap("CHLD") { wake_w.write_nonblock("x", exception: false) if Process.pid == harness_pid }

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

        r, w = IO.pipe
        # Ruby 3 makes pipes O_NONBLOCK; the child's stdout/stderr must be an ordinary blocking pipe (programs it
        # execs inherit it). F_SETFL ignores the access mode, so 0 clears O_NONBLOCK (and nothing else is set).
        w.fcntl(F_SETFL, 0)
        t_fork = now
        begin
          pid = Process.fork do
            # --- the child ---
            err = nil
            begin
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
        result["forks"] += 1
        reader = Reader.new(r)
        deadline = t_fork + timeout
        status = nil
        hung = false
        begin
          # Phase 1: output until EOF (or the child exited while something else holds the pipe): one IO.select on
          # the output and the SIGCHLD self-pipe.
          until reader.eof
            left = deadline - now
            if left <= 0
              hung = true
              break
            end
            ready = IO.select([r, wake_r], nil, nil, left)
            next unless ready

            reader.pump if ready[0].include?(r)
            next unless ready[0].include?(wake_r)

            wake_r.read_nonblock(256, exception: false)
            _, status = Process.wait2(pid, Process::WNOHANG)
            if status
              reader.pump
              break
            end
          end
          # Phase 2: EOF seen, the child is normally exiting right now: wait for its SIGCHLD, not in a sleep loop.
          unless status || hung
            loop do
              _, status = Process.wait2(pid, Process::WNOHANG)
              break if status

              left = deadline - now
              if left <= 0
                hung = true
                break
              end
              wake_r.read_nonblock(256, exception: false) if IO.select([wake_r], nil, nil, left)
            end
          end
          t_done = now
          if hung
            d = nil
            reader.pump
            seen = reader.output.dup # what the child printed before it was found hung (the diagnosis adds more)
            if diagnosed < diag_max
              diagnosed += 1
              d = diagnose(pid, gdb, reader)
            end
            begin
              Process.kill(:KILL, pid)
            rescue SystemCallError
              nil
            end
            Process.wait(pid)
            live = nil
            result["hang"] += 1
            if failures.size < MAX_FAILURES
              out = utf8(tail(seen, 1000))
              msg = +"still running #{(timeout * 1000).round} ms after fork"
              msg << ": #{out}" unless out.strip.empty?
              failures << { "kind" => "hang", "iteration" => i, "elapsed_ms" => ((t_fork - t_start) * 1000).round(3),
                            "message" => msg, "signal" => nil, "signame" => nil, "status" => nil, "diag" => d }
            end
          else
            live = nil
            out = reader.output
            if status.signaled?
              sig = status.termsig
              result["crash"] += 1
              if failures.size < MAX_FAILURES
                msg = +"killed by #{signame(sig)} (#{sig})"
                bug = utf8(out)[/^.*\[BUG\].*$/]
                msg << "\n#{bug}" if bug
                msg << "\n#{utf8(tail(out, 1000))}" unless out.empty?
                failures << { "kind" => "crash", "iteration" => i, "elapsed_ms" => ((t_fork - t_start) * 1000).round(3),
                              "message" => msg, "signal" => sig, "signame" => signame(sig), "status" => nil }
              end
            elsif status.exitstatus != 0
              result["wrong"] += 1
              if failures.size < MAX_FAILURES
                text = utf8(tail(out, 1000))
                msg = text.strip.empty? ? "exited with status #{status.exitstatus}" : text
                failures << { "kind" => "wrong", "iteration" => i, "elapsed_ms" => ((t_fork - t_start) * 1000).round(3),
                              "message" => msg, "signal" => nil, "signame" => nil, "status" => status.exitstatus }
              end
            elsif expect && !expect.match?(utf8(out))
              result["wrong"] += 1
              if failures.size < MAX_FAILURES
                failures << { "kind" => "wrong", "iteration" => i, "elapsed_ms" => ((t_fork - t_start) * 1000).round(3),
                              "message" => "output did not match /#{cfg["expect_output"]}/: #{utf8(tail(out, 900)).inspect}",
                              "signal" => nil, "signame" => nil, "status" => 0 }
              end
            else
              result["ok"] += 1
              latencies << (t_done - t_fork) * 1000.0
            end
          end
        ensure
          r.close unless r.closed?
        end
        i += 1
        break if fail_fast && (result["hang"] + result["crash"] + result["wrong"]).positive?
      end
      result["elapsed_ms"] = ((now - t_start) * 1000).round(3)
      stop = true
      sorted = latencies.sort
      result["child_ms"] = { "median" => percentile(sorted, 0.5)&.round(3), "p99" => percentile(sorted, 0.99)&.round(3) }
      # Extra (not in PROTOCOL.md's table, ignored by drivers that do not know it): did the loop threads work?
      result["loop"] = { "iterations" => iterations.sum, "errors" => loop_errors.sum, "first_error" => first_loop_error }
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
        begin
          Process.kill(:KILL, live)
          Process.wait(live)
        rescue SystemCallError
          nil
        end
      end
    end
  end
end

# skip(reason) for `prelude` / `setup`: the case cannot run here (the result says why; no fork happens).
module Kernel
  private

  def skip(reason = "skipped")
    raise ForkMatrixHarness::Skip, reason.to_s
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
