//! `ganime-camera`: webcam -> filter -> window / Y4M stream. The capture, filter and sink pipeline arrives with
//! its own issue; until then the binary says so instead of pretending to work.

fn main() {
    eprintln!("ganime-camera: the live camera filter is not built yet (see the project's camera-filter issue).");
    std::process::exit(2);
}
