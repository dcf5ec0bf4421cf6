//! ${{ values.description }}

use std::net::TcpListener;

fn main() -> std::io::Result<()> {
    let listener = TcpListener::bind("0.0.0.0:${{ values.port }}")?;
    println!("${{ values.name }} listening on {}", listener.local_addr()?);
    for stream in listener.incoming() {
        drop(stream?);
    }
    Ok(())
}
