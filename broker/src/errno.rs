//! Errno names accepted by `--deny-errno`.

const NAMES: &[(&str, i32)] = &[
    ("EACCES", libc::EACCES),
    ("EPERM", libc::EPERM),
    ("ENOENT", libc::ENOENT),
    ("EROFS", libc::EROFS),
    ("ENOTDIR", libc::ENOTDIR),
    ("EISDIR", libc::EISDIR),
    ("EINVAL", libc::EINVAL),
    ("EIO", libc::EIO),
    ("ENXIO", libc::ENXIO),
    ("ENODEV", libc::ENODEV),
    ("ENOSYS", libc::ENOSYS),
    ("EOPNOTSUPP", libc::EOPNOTSUPP),
    ("ELOOP", libc::ELOOP),
    ("EBUSY", libc::EBUSY),
    ("ETXTBSY", libc::ETXTBSY),
    ("EAGAIN", libc::EAGAIN),
    ("EEXIST", libc::EEXIST),
    ("EMFILE", libc::EMFILE),
    ("ENFILE", libc::ENFILE),
    ("ENOSPC", libc::ENOSPC),
    ("ENAMETOOLONG", libc::ENAMETOOLONG),
];

/// The errno for a name such as `EACCES` (case-insensitive), or a plain positive number.
pub fn parse(name: &str) -> Option<i32> {
    if let Ok(n) = name.parse::<i32>() {
        return (1..4096).contains(&n).then_some(n);
    }
    NAMES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|&(_, v)| v)
}

/// The name of `errno` if it has one here, else the number.
pub fn name(errno: i32) -> String {
    NAMES
        .iter()
        .find(|&&(_, v)| v == errno)
        .map_or_else(|| errno.to_string(), |(n, _)| n.to_string())
}

/// All accepted names, for the error message.
pub fn names() -> impl Iterator<Item = &'static str> {
    NAMES.iter().map(|(n, _)| *n)
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_names_and_numbers() {
        assert_eq!(super::parse("eacces"), Some(libc::EACCES));
        assert_eq!(super::parse("ENOENT"), Some(libc::ENOENT));
        assert_eq!(super::parse("13"), Some(13));
        assert_eq!(super::parse("0"), None);
        assert_eq!(super::parse("EWHAT"), None);
    }
}
