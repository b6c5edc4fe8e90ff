//! `Radio` over lora-phy 3 (in progress).
