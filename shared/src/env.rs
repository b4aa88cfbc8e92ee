//! `MOGR_*` settings read from the environment, the same way by every layer that has some.

use crate::{Error, Result};

/// A setting's value; unset and empty are the same.
pub(crate) fn var(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.is_empty())
}

/// A whole-number setting.
pub(crate) fn number(key: &str) -> Result<Option<u64>> {
    var(key)
        .map(|v| {
            v.parse()
                .map_err(|_| Error::internal(format!("{key}={v:?} is not a whole number")))
        })
        .transpose()
}

/// The items of a comma-separated value, trimmed, empty ones left out.
pub(crate) fn list(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|v| !v.is_empty())
}
