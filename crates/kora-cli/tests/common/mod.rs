//! Shared by the tests that start the real `kora serve`.

#![allow(dead_code)]

pub mod cluster;
pub mod serve;

use std::io::{BufRead, BufReader};
use std::process::Child;

/// Reads a starting `kora serve`'s log until it says where it listens, and returns that
/// address; then keeps draining the log so the server never blocks on a full pipe. Panics
/// with the log so far if the server exits first.
pub fn listening_address(child: &mut Child) -> String {
    let stderr = child.stderr.take().expect("stderr is piped");
    let mut lines = BufReader::new(stderr).lines();
    let mut seen = Vec::new();
    let addr = loop {
        let Some(Ok(line)) = lines.next() else {
            panic!("kora serve exited before listening:\n{}", seen.join("\n"));
        };
        if let Some(rest) = line.split("listening addr=").nth(1) {
            break rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string();
        }
        seen.push(line);
    };
    std::thread::spawn(move || for _ in lines {});
    addr
}
