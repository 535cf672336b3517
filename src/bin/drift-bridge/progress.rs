//! A progress bar on stderr, for runs long enough to wonder about.
//!
//! Shown only when stderr is a terminal (a log file or a pipe gets the
//! summary alone), and only once a run has taken half a second, so that the
//! quick runs people type by hand print nothing but their answer. Position is
//! in bytes of input, which gives an ETA when the input's size is known; the
//! message counts events.

use std::fmt::Write as _;
use std::io::{self, IsTerminal};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{HumanCount, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

/// How long a run goes before the bar appears.
const DELAY: Duration = Duration::from_millis(500);
/// How often the bar is redrawn at most.
const INTERVAL: Duration = Duration::from_millis(100);

pub struct Progress {
    bar: ProgressBar,
    /// The events count and rate, drawn as `{events}`: set without a
    /// redraw, so that each update draws once, with the new position.
    events: Arc<Mutex<String>>,
    started: Instant,
    last_update: Instant,
    visible: bool,
}

impl Progress {
    /// A bar for `total` bytes (unknown for stdin), or `None` when stderr is
    /// not a terminal.
    pub fn on_terminal(total: Option<u64>) -> Option<Progress> {
        if !io::stderr().is_terminal() {
            return None;
        }
        let template = match total {
            Some(_) => "{elapsed_precise} [{wide_bar}] {bytes}/{total_bytes}, ETA {eta}, {events}",
            None => "{elapsed_precise} {spinner} {bytes} read, {events}",
        };
        let events = Arc::new(Mutex::new(String::new()));
        let shown = Arc::clone(&events);
        let style = ProgressStyle::with_template(template).map_or_else(|_| ProgressStyle::default_bar(), |s| s.progress_chars("#>-"));
        let style = style.with_key("events", move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = w.write_str(&shown.lock().unwrap_or_else(|p| p.into_inner()));
        });
        // Hidden until DELAY has passed.
        let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::hidden()).with_style(style);
        let now = Instant::now();
        Some(Progress { bar, events, started: now, last_update: now, visible: false })
    }

    /// Records `bytes` read so far and `events` done so far; `detail` is
    /// appended to the events count (it is only called when the bar is drawn).
    pub fn update(&mut self, bytes: u64, events: u64, detail: impl FnOnce() -> String) {
        let now = Instant::now();
        if now.duration_since(self.last_update) < INTERVAL {
            return;
        }
        self.last_update = now;
        let elapsed = now.duration_since(self.started);
        if !self.visible {
            if elapsed < DELAY {
                return;
            }
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
            self.visible = true;
        }
        let per_second = events as f64 / elapsed.as_secs_f64().max(1e-3);
        {
            let mut text = self.events.lock().unwrap_or_else(|p| p.into_inner());
            text.clear();
            let _ = write!(text, "{} events ({}/s){}", HumanCount(events), HumanCount(per_second as u64), detail());
        }
        self.bar.set_position(bytes);
    }

    /// Runs `print` (which writes to stderr) with the bar out of the way.
    pub fn suspend<R>(&self, print: impl FnOnce() -> R) -> R {
        self.bar.suspend(print)
    }

    /// Clears the bar, leaving the terminal for the summary.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// Prints `line` on stderr, above the bar when there is one.
pub fn eprint_line(progress: Option<&Progress>, line: std::fmt::Arguments<'_>) {
    match progress {
        Some(p) => p.suspend(|| eprintln!("{line}")),
        None => eprintln!("{line}"),
    }
}
