//! A Rust service

use std::net::TcpListener;

fn main() -> std::io::Result<()> {
    let listener = TcpListener::bind("0.0.0.0:8080")?;
    println!("billing listening on {}", listener.local_addr()?);
    for stream in listener.incoming() {
        drop(stream?);
    }
    Ok(())
}
