
# ---- the fork loop: what forkmatrix's harness (runners/ruby/harness.rb) does, without its bookkeeping ----
module ForkMatrixRepro
  module_function

  def now
    Process.clock_gettime(Process::CLOCK_MONOTONIC)
  end

  def say(text)
    REPORT[0].syswrite(text)
  end

  def give_up(text)
    say("#{text}\nnothing was judged (exit 2)\n")
    exit!(2)
  end

  def describe(e)
    "#{e.class}: #{e.message}\n#{(e.backtrace || []).first(4).map { |l| "  #{l}" }.join("\n")}"
  end

  # Wait for pid until deadline, reading its output: [status or nil when still alive, output].
  def wait(pid, r, deadline)
    out = +""
    r_open = true
    loop do
      wpid, st = Process.wait2(pid, Process::WNOHANG)
      if wpid
        while r_open && IO.select([r], nil, nil, 0)
          chunk = r.read_nonblock(65_536, exception: false)
          break unless chunk.is_a?(String)

          out << chunk
        end
        return [st, out]
      end
      left = deadline - now
      return [nil, out] if left <= 0

      if r_open
        next unless IO.select([r], nil, nil, [left, 0.05].min)

        chunk = r.read_nonblock(65_536, exception: false)
        if chunk.nil?
          r_open = false
        elsif chunk.is_a?(String)
          out << chunk
        end
      else
        sleep([left, 0.001].min)
      end
    end
  end

  # x86_64 system calls that wait with a timeout: nil = always, [argument, :p] = a non-NULL timeout pointer,
  # [argument, :i] = a timeout other than -1 (as runners/ruby/harness.rb)
  TIMED = { 35 => nil, 230 => nil, 202 => [4, :p], 449 => [5, :p], 7 => [3, :i], 271 => [3, :p], 23 => [5, :p],
            270 => [5, :p], 232 => [4, :i], 281 => [4, :i], 441 => [4, :p] }.freeze

  def timed_wait?(task)
    f = File.read("#{task}/syscall").split
    return false unless TIMED.key?(f[0].to_i)

    how = TIMED[f[0].to_i]
    return true if how.nil?

    arg = f[how[0]].to_i(16)
    how[1] == :p ? arg != 0 : (arg & 0xffffffff) != 0xffffffff
  rescue SystemCallError
    false
  end

  # One look at the child's process group: [a thread is running, a thread is in a timed wait or D, progress sum:
  # CPU ticks plus each thread's schedstat run time and times scheduled].
  def look(pid)
    running = soft = false
    sig = 0
    Dir.children("/proc").each do |p|
      next unless p.match?(/\A\d+\z/)

      begin
        f = File.read("/proc/#{p}/stat").rpartition(")").last.split
        next unless f[2].to_i == pid || p.to_i == pid

        sig += f[11].to_i + f[12].to_i
        Dir.children("/proc/#{p}/task").each do |t|
          task = "/proc/#{p}/task/#{t}"
          state = File.read("#{task}/stat").rpartition(")").last.split[0]
          if state == "R"
            running = true
          elsif state == "D" || (state == "S" && timed_wait?(task))
            soft = true
          end
          ss = begin
            File.read("#{task}/schedstat").split
          rescue SystemCallError
            []
          end
          sig += ss[0].to_i * 31 + ss[2].to_i
        end
      rescue SystemCallError
        next
      end
    end
    [running, soft, sig]
  end

  # A child alive at the timeout is a hang when blocked: no thread of its group running or in a timed wait in two
  # looks 100 ms apart, and no progress between them. One that is not is slow: waited for up to 5 x the timeout,
  # as the harness does. [status or nil for a hang, output].
  def wait_slow(pid, r, t0, out)
    timeout = FM_TIMEOUT_MS / 1000.0
    hard = t0 + 5 * timeout
    step = [0.1, timeout / 4].max
    loop do
      a = look(pid)
      st, more = wait(pid, r, now + 0.1)
      out << more
      return [st, out] if st

      b = look(pid)
      return [nil, out] if (!a[0] && !b[0] && !a[1] && !b[1] && a[2] == b[2]) || now >= hard

      st, more = wait(pid, r, [hard, now + step].min)
      out << more
      return [st, out] if st
    end
  end

  def run(setup:, loop_fn:, precondition:, before_fork:, child:)
    forks = ARGV[0].to_i.positive? ? ARGV[0].to_i : FM_FORKS
    # this program's lines go to the original stdout; the case's own output goes to /dev/null, as the harness's
    # goes to a log file
    REPORT[0] = STDOUT.dup
    STDOUT.reopen(File::NULL, "w")
    STDERR.reopen(File::NULL, "w")
    expect = FM_EXPECT ? Regexp.new(FM_EXPECT) : nil
    begin
      setup.call
    rescue ForkMatrixSkip => e
      give_up("cannot run here: #{e.message}")
    rescue Exception => e # rubocop:disable Lint/RescueException
      give_up("setup raised #{describe(e)}")
    end
    stop = false
    running = 0
    errors = []
    FM_INSIDE.replace(Array.new(FM_THREADS, 0))
    FM_ITERS.replace(Array.new(FM_THREADS, 0))
    FM_THREADS.times do |idx|
      Thread.new do
        Thread.current.report_on_exception = false
        running += 1
        if FM_HAS_LOOP
          until stop
            FM_INSIDE[idx] = 1
            begin
              loop_fn.call
            rescue Exception => e # rubocop:disable Lint/RescueException
              FM_INSIDE[idx] = 0
              errors << "loop thread #{idx} stopped: #{e.class}: #{e.message}"
              break
            end
            FM_INSIDE[idx] = 0
            FM_ITERS[idx] += 1
            Thread.pass
          end
        else
          sleep
        end
      end
    end
    t_wait = now
    sleep(0.001) while running < FM_THREADS && now - t_wait < 2.0
    sleep(FM_WARMUP_MS / 1000.0)
    begin
      give_up("precondition failed: returned false") if false.equal?(precondition.call)
    rescue SystemExit
      raise
    rescue Exception => e # rubocop:disable Lint/RescueException
      give_up("precondition failed: #{describe(e)}")
    end
    fd1 = IO.for_fd(1, autoclose: false)
    fd2 = IO.for_fd(2, autoclose: false)
    rng = Random.new(FM_SEED)
    counts = { "hang" => 0, "crash" => 0, "wrong" => 0 }
    it0 = FM_ITERS.sum
    inside_n = 0
    n = 0
    slow = 0
    start = now
    while n < forks && (n.zero? || now - start < FM_SECONDS)
      delay = FM_MAX_DELAY_US.positive? ? rng.rand(0..FM_MAX_DELAY_US) : 0
      if delay > 50
        sleep(delay / 1_000_000.0)
      elsif delay.positive?
        until_t = now + delay / 1_000_000.0
        nil while now < until_t
      end
      begin
        before_fork.call
      rescue Exception => e # rubocop:disable Lint/RescueException
        give_up("before_fork raised #{describe(e)}")
      end
      r, w = IO.pipe
      w.fcntl(4, 0) # F_SETFL: the child's stdout is an ordinary blocking pipe
      inside_n += 1 if FM_INSIDE.include?(1)
      t_fork = now
      pid = Process.fork do
        err = nil
        begin
          Process.setpgid(0, 0)
          r.close
          fd1.reopen(w)
          fd2.reopen(w)
          err = fd2
          w.close
        rescue Exception # rubocop:disable Lint/RescueException
          exit!(97)
        end
        ok = begin
          !false.equal?(child.call)
        rescue SystemExit
          raise # the snippet called exit(n): end like that (at_exit handlers run)
        rescue Exception => e # rubocop:disable Lint/RescueException
          begin
            err.syswrite("#{describe(e)}\n")
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
        FM_EXIT_NORMAL ? exit(0) : exit!(0)
      end
      w.close
      begin
        Process.setpgid(pid, pid)
      rescue SystemCallError
        nil
      end
      st, out = wait(pid, r, t_fork + FM_TIMEOUT_MS / 1000.0)
      if st.nil?
        st, out = wait_slow(pid, r, t_fork, out)
        slow += 1 if st
      end
      kind = why = nil
      if st.nil?
        kind = "hang"
        why = format("blocked (or still running after 5 x %d ms): killed %.0f ms after its fork", FM_TIMEOUT_MS, (now - t_fork) * 1000)
        [-pid, pid].each do |p|
          Process.kill(:KILL, p)
        rescue SystemCallError
          nil
        end
        Process.wait(pid)
      elsif st.signaled?
        kind = "crash"
        why = "killed by SIG#{Signal.signame(st.termsig)} (#{st.termsig})"
      elsif st.exitstatus != 0
        kind = "wrong"
        why = "exit status #{st.exitstatus}"
      elsif expect && out.dup.force_encoding(Encoding::UTF_8).scrub !~ expect
        kind = "wrong"
        why = "output did not match /#{FM_EXPECT}/"
      end
      r.close
      if kind
        tail = out.scrub.strip[-400..] || out.scrub.strip
        say("child #{n}: #{kind}: #{why}#{tail.empty? ? '' : ": #{tail}"}\n") if counts.values.sum < 5
        counts[kind] += 1
      end
      n += 1
    end
    ms = (now - start) * 1000
    iters = FM_ITERS.sum - it0
    stop = true
    bad = counts.values.sum
    errors.first(3).each { |e| say("#{e}\n") }
    say(format("pressure: %d loop thread(s), %d iterations in %.0f ms; at %d of %d forks a thread was inside its loop body\n",
               FM_THREADS, iters, ms, inside_n, n))
    say("#{slow} child(ren) were still running at the #{FM_TIMEOUT_MS} ms timeout and finished later (slow, not hangs)\n") if slow.positive?
    say("#{bad} of #{n} children failed (#{counts['hang']} hang, #{counts['crash']} crash, #{counts['wrong']} wrong)\n")
    FM_CLEANUP.each(&:call)
    exit!(bad.positive? ? 1 : 0) # the loop threads may be stuck inside the case's code: do not wait for them
  end
end

ForkMatrixRepro.run(setup: fm_setup, loop_fn: fm_loop, precondition: fm_precondition, before_fork: fm_before_fork, child: fm_child)
