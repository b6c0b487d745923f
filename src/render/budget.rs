//! The budget of one render: a template may loop, build strings and write output, but only so
//! much, for so long, and it yields to Postgres interrupts (statement_timeout, pg_cancel_backend,
//! pg_terminate_backend) while it runs. The bounded Liquid language (`language.rs`) calls
//! [`tick`] at every loop iteration, filter and tag, and writes through [`Output`]; a limit that
//! is hit ends the render with an error naming it, and nothing is allocated past it.
use std::cell::RefCell;
use std::time::{Duration, Instant};

/// What one render may use.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Bytes of output.
    pub output: usize,
    /// Loop iterations, all loops of the render together.
    pub iterations: u64,
    /// Bytes of memory held beyond what was held when the render started.
    pub memory: usize,
    /// Wall-clock time.
    pub time: Duration,
}

/// Loop iterations per render.
pub const ITERATIONS: u64 = 100_000;
/// Memory per render.
pub const MEMORY: usize = 16 << 20;
/// Time per render: a last resort (iterations and memory bound the work first; a batch also
/// stops taking enrollments after 5 s), so it is generous enough never to decide a slow
/// machine's render.
pub const TIME: Duration = Duration::from_secs(1);

impl Limits {
    /// The default limits with an output limit of `output` bytes.
    pub fn output(output: usize) -> Limits {
        Limits {
            output,
            iterations: ITERATIONS,
            memory: MEMORY,
            time: TIME,
        }
    }
}

struct State {
    limits: Limits,
    started: Instant,
    memory_base: usize,
    iterations: u64,
    interrupts: fn(),
    /// The first limit hit: the render's error, whatever Liquid made of it on the way out.
    exceeded: Option<String>,
}

thread_local! {
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
}

/// Runs one render under `limits`; `interrupts` is called at every tick (it raises the
/// Postgres error of a pending cancel or terminate). A limit that was hit is the error.
pub fn run<R>(
    limits: Limits,
    interrupts: fn(),
    render: impl FnOnce() -> Result<R, String>,
) -> Result<R, String> {
    /// Puts the previous state back, also when the render unwinds (a Postgres error raised
    /// by `interrupts`).
    struct Restore(Option<State>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            STATE.with(|s| *s.borrow_mut() = previous);
        }
    }
    let previous = STATE.with(|s| {
        s.borrow_mut().replace(State {
            limits,
            started: Instant::now(),
            memory_base: crate::memory::live(),
            iterations: 0,
            interrupts,
            exceeded: None,
        })
    });
    let restore = Restore(previous);
    let result = render();
    let exceeded = STATE.with(|s| s.borrow_mut().as_mut().and_then(|st| st.exceeded.take()));
    drop(restore);
    match exceeded {
        Some(limit) => Err(limit),
        None => result,
    }
}

fn exceeded(message: String) -> liquid_core::Error {
    STATE.with(|s| {
        if let Some(state) = s.borrow_mut().as_mut() {
            state.exceeded.get_or_insert(message.clone());
        }
    });
    liquid_core::Error::with_msg(message)
}

/// Checks interrupts, time and memory; `more` bytes are about to be allocated.
pub fn reserve(more: usize) -> liquid_core::Result<()> {
    let check = STATE.with(|s| {
        s.borrow()
            .as_ref()
            .map(|st| (st.interrupts, st.limits, st.started, st.memory_base))
    });
    let Some((interrupts, limits, started, base)) = check else {
        return Ok(());
    };
    interrupts();
    if started.elapsed() > limits.time {
        return Err(exceeded(format!(
            "the template ran longer than {} ms",
            limits.time.as_millis()
        )));
    }
    let held = crate::memory::live().saturating_sub(base);
    if held.saturating_add(more) > limits.memory {
        return Err(exceeded(format!(
            "the template needs more than {} MB of memory",
            limits.memory >> 20
        )));
    }
    Ok(())
}

/// A step of the render (a filter, a tag): checks interrupts, time and memory.
pub fn tick() -> liquid_core::Result<()> {
    reserve(0)
}

/// A loop iteration: counts against the iteration limit, then ticks.
pub fn iteration() -> liquid_core::Result<()> {
    let over = STATE.with(|s| {
        let mut s = s.borrow_mut();
        let st = s.as_mut()?;
        st.iterations += 1;
        (st.iterations > st.limits.iterations).then_some(st.limits.iterations)
    });
    if let Some(limit) = over {
        return Err(exceeded(format!(
            "the template's loops ran more than {limit} iterations"
        )));
    }
    tick()
}

/// Whether a loop of `n` iterations fits in what is left of the iteration limit.
pub fn iterations_fit(n: u64) -> liquid_core::Result<()> {
    let over = STATE.with(|s| {
        let s = s.borrow();
        let st = s.as_ref()?;
        (st.iterations.saturating_add(n) > st.limits.iterations).then_some(st.limits.iterations)
    });
    match over {
        Some(limit) => Err(exceeded(format!(
            "the template's loops ran more than {limit} iterations"
        ))),
        None => Ok(()),
    }
}

/// Output that refuses to grow past `limit` bytes (the render's output, a capture).
pub struct Output {
    pub bytes: Vec<u8>,
    limit: usize,
    what: &'static str,
}

impl Output {
    /// The render's output, limited by the render's output limit.
    pub fn message() -> Output {
        let limit = STATE.with(|s| s.borrow().as_ref().map(|st| st.limits.output));
        Output {
            bytes: Vec::new(),
            limit: limit.unwrap_or(usize::MAX),
            what: "the rendered text",
        }
    }

    /// A capture block's text, limited by the render's memory limit.
    pub fn capture() -> Output {
        let limit = STATE.with(|s| s.borrow().as_ref().map(|st| st.limits.memory));
        Output {
            bytes: Vec::new(),
            limit: limit.unwrap_or(usize::MAX),
            what: "a capture",
        }
    }
}

impl std::io::Write for Output {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let to_io = |e: liquid_core::Error| std::io::Error::other(e.to_string());
        if self.bytes.len().saturating_add(buf.len()) > self.limit {
            return Err(to_io(exceeded(format!(
                "{} is longer than {} bytes",
                self.what, self.limit
            ))));
        }
        reserve(buf.len()).map_err(to_io)?;
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
