//! Rebuilds the crate when a migration is added: `sqlx::migrate!` embeds the files it
//! finds, but on stable Rust only changes to those files, not new ones, are tracked.

fn main() {
    println!("cargo:rerun-if-changed=../../../migrations/postgres");
}
