//! A corrupt flash: any bytes in the two storage slots. Restoring never panics; it
//! yields a fresh device, the state of a valid slot, or a typed error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use slope_node::device::storage::{Slots, TwoSlot};
use slope_node::device::{Config, Slope};

struct Raw<'a>(&'a [u8]);

impl Slots for Raw<'_> {
    type Error = ();
    fn slot_len(&self) -> usize {
        1024
    }
    fn read(&mut self, slot: usize, buf: &mut [u8]) -> Result<(), ()> {
        let start = slot * 1024;
        for (i, b) in buf.iter_mut().enumerate() {
            *b = self.0.get(start + i).copied().unwrap_or(0xff);
        }
        Ok(())
    }
    fn write(&mut self, _: usize, _: &[u8]) -> Result<(), ()> {
        Err(())
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(mut device) = Slope::restore(Config::default(), TwoSlot::new(Raw(data))) {
        let _ = device.attest(0, b"x", &[]);
    }
});
