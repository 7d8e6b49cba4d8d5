//! Progress bars for long command-line work. They are drawn on stderr only when it is a
//! terminal and the work is long: piped or redirected output (scripts, CI logs, tests) stays
//! exactly the lines it always was.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Fewer rule files than this load before a bar would say anything.
pub const AT_LEAST: usize = 50;

/// A bar that stays hidden until [`tick`] finds the work long enough and stderr a terminal.
pub fn bar(what: &'static str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
    bar.set_style(
        ProgressStyle::with_template("{msg:<10} {bar:40} {pos}/{len} eta {eta}")
            .expect("valid template"),
    );
    bar.set_message(what);
    bar
}

/// Tells `bar` that `done` of `total` items are done.
pub fn tick(bar: &ProgressBar, done: usize, total: usize) {
    if total < AT_LEAST {
        return;
    }
    if bar.is_hidden() && bar.length().is_none() && std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::stderr());
    }
    bar.set_length(total as u64);
    bar.set_position(done as u64);
}
