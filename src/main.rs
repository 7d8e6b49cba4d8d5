//! Thin binary: parse arguments and configuration, then call the library.

#[global_allocator]
static ALLOC: kairos::alloc::Allocator = kairos::alloc::Allocator;

fn main() -> std::process::ExitCode {
    kairos::alloc::tune();
    kairos::cli::main()
}
