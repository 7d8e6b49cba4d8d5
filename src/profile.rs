//! A CPU profile of a running server, for finding where ingest spends its time (built only
//! with `--features profile`). `perf` needs kernel performance events, which containers and
//! some VMs do not give; pprof samples on the process's CPU-time timer (`setitimer`), which
//! works everywhere.
//!
//! `KAIROS_PROFILE=out.folded kairos serve` samples from start to a clean stop and writes
//! the stacks folded (one line per stack, root first, then the sample count): the input of
//! flame graph tools, and easy to total with a script.

pub struct Profile {
    guard: pprof::ProfilerGuard<'static>,
    path: std::path::PathBuf,
}

/// Starts sampling when `KAIROS_PROFILE` names a file to write.
pub fn start() -> Option<Profile> {
    let path = std::env::var_os("KAIROS_PROFILE")?;
    let guard = pprof::ProfilerGuardBuilder::default()
        .frequency(499)
        // Unwinding from inside these libraries can crash in a signal handler.
        .blocklist(&["libc", "libgcc", "pthread", "vdso"])
        .build()
        .map_err(|e| eprintln!("profile not started: {e}"))
        .ok()?;
    Some(Profile {
        guard,
        path: path.into(),
    })
}

impl Profile {
    pub fn finish(self) {
        let report = match self.guard.report().build() {
            Ok(r) => r,
            Err(e) => return eprintln!("profile not written: {e}"),
        };
        let mut out = String::new();
        for (frames, count) in &report.data {
            out.push_str(&frames.thread_name);
            for frame in frames.frames.iter().rev() {
                for symbol in frame.iter().rev() {
                    out.push(';');
                    out.push_str(&symbol.to_string());
                }
            }
            out.push_str(&format!(" {count}\n"));
        }
        match std::fs::write(&self.path, out) {
            Ok(()) => eprintln!("profile written to {}", self.path.display()),
            Err(e) => eprintln!("profile not written to {}: {e}", self.path.display()),
        }
    }
}
