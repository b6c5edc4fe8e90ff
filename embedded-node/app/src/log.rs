//! Logging macros (textually scoped: `lib.rs` declares this module first): `defmt` when the `defmt` feature is on, nothing otherwise.
//!
//! Without `defmt` the arguments are still borrowed (so a variable used only in a log line
//! does not trigger an unused warning) but nothing is formatted or kept in flash.
//! Arguments must implement `defmt::Format` when the feature is on; wrap foreign types in
//! [`dbg`].

/// Wraps a `Debug` value for `defmt` (`defmt::Debug2Format`).
#[cfg(feature = "defmt")]
pub fn dbg<T: core::fmt::Debug + ?Sized>(value: &T) -> defmt::Debug2Format<'_, T> {
    defmt::Debug2Format(value)
}

/// Wraps a `Debug` value for `defmt` (without `defmt`: the value itself).
#[cfg(not(feature = "defmt"))]
pub fn dbg<T: ?Sized>(value: &T) -> &T {
    value
}

macro_rules! log_impl {
    ($level:ident, $($arg:tt)*) => {{
        #[cfg(feature = "defmt")]
        ::defmt::$level!($($arg)*);
        #[cfg(not(feature = "defmt"))]
        log_impl_discard!($($arg)*);
    }};
}

#[cfg(not(feature = "defmt"))]
macro_rules! log_impl_discard {
    ($fmt:literal $(, $arg:expr)* $(,)?) => {{
        $( let _ = &$arg; )*
    }};
}

macro_rules! info { ($($arg:tt)*) => { log_impl!(info, $($arg)*) }; }
macro_rules! warn { ($($arg:tt)*) => { log_impl!(warn, $($arg)*) }; }
macro_rules! error { ($($arg:tt)*) => { log_impl!(error, $($arg)*) }; }
macro_rules! debug { ($($arg:tt)*) => { log_impl!(debug, $($arg)*) }; }
