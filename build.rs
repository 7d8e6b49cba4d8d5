//! `sqlx::migrate!` embeds `migrations/` at compile time; cargo only rebuilds when told the
//! folder is an input, or a new migration would be missing from the binary.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
