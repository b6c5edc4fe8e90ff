//! Semtech UDP packet-forwarder ingest (in progress).
