//! Recent terminal output, addressed by absolute byte offsets: a reconnect
//! replays it; a viewer that fell behind its start skips ahead.

use std::collections::VecDeque;

/// The last `capacity` bytes of a stream.
#[derive(Debug)]
pub struct Ring {
    buf: VecDeque<u8>,
    capacity: usize,
    /// Offset of the first byte ever written that is still held.
    start: u64,
}

impl Ring {
    pub fn new(capacity: usize) -> Self {
        Self {
            buf: VecDeque::with_capacity(capacity.min(4096)),
            capacity,
            start: 0,
        }
    }

    /// Offset of the oldest byte held.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// Offset just past the newest byte.
    pub fn end(&self) -> u64 {
        self.start + self.buf.len() as u64
    }

    pub fn push(&mut self, data: &[u8]) {
        let data = if data.len() > self.capacity {
            let drop = data.len() - self.capacity;
            self.start += (self.buf.len() + drop) as u64;
            self.buf.clear();
            &data[drop..]
        } else {
            data
        };
        let over = (self.buf.len() + data.len()).saturating_sub(self.capacity);
        self.buf.drain(..over);
        self.start += over as u64;
        self.buf.extend(data);
    }

    /// Up to `max` bytes from `from` (clamped to what is held).
    pub fn read(&self, from: u64, max: usize) -> Vec<u8> {
        let from = from.max(self.start);
        let skip = (from - self.start) as usize;
        self.buf.iter().skip(skip).take(max).copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_bytes_with_absolute_offsets() {
        let mut r = Ring::new(8);
        r.push(b"hello");
        assert_eq!((r.start(), r.end()), (0, 5));
        r.push(b" world");
        assert_eq!((r.start(), r.end()), (3, 11));
        assert_eq!(r.read(0, 100), b"lo world");
        assert_eq!(r.read(9, 100), b"ld");
        r.push(b"0123456789abc");
        assert_eq!((r.start(), r.end()), (16, 24));
        assert_eq!(r.read(0, 3), b"567");
    }
}
