//! Discrete-event LoRa channel simulator (in progress).
