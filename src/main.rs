//! Thin binary: parse arguments and configuration, then call the library.

fn main() -> std::process::ExitCode {
    kairos::cli::main()
}
