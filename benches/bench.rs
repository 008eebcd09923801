//! Berth's benchmarks: medians over many runs, beside a reference where one exists.

fn main() {
    eprintln!("no benchmarks yet");
}
