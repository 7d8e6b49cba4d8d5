//! Thin binary: parse arguments and configuration, then call the library.

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    kairos::cli::main()
}
