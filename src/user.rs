//! `user = "app"` or `"uid[:gid]"`: resolved when the config loads, applied in
//! the child before exec (supplementary groups, gid, uid in that order), so
//! images need no gosu or su-exec. A uid without a passwd entry gets gid 0,
//! as `docker run --user` does.

use nix::unistd::{Gid, Group, Uid, User};
use std::ffi::CString;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ids {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<libc::gid_t>,
    /// The passwd home directory, exported as HOME when the config sets none.
    pub home: Option<String>,
}

struct Passwd {
    uid: u32,
    gid: u32,
    name: String,
    home: String,
}

fn getpw(name: Option<&str>, uid: u32) -> Option<Passwd> {
    let user = match name {
        Some(n) => User::from_name(n),
        None => User::from_uid(Uid::from_raw(uid)),
    };
    let pw = user.ok()??;
    let home = pw.dir.to_string_lossy().into_owned();
    Some(Passwd { uid: pw.uid.as_raw(), gid: pw.gid.as_raw(), name: pw.name, home })
}

fn group_id(name: &str) -> Option<u32> {
    Some(Group::from_name(name).ok()??.gid.as_raw())
}

fn group_list(name: &str, gid: u32) -> Vec<libc::gid_t> {
    let listed = CString::new(name).ok().and_then(|n| nix::unistd::getgrouplist(&n, Gid::from_raw(gid)).ok());
    listed.map_or_else(|| vec![gid], |groups| groups.into_iter().map(Gid::as_raw).collect())
}

/// Resolves `name`, `uid`, `name:group` or `uid:gid`.
pub fn resolve(spec: &str) -> Result<Ids, String> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let pw = match user.parse::<u32>() {
        Ok(uid) => getpw(None, uid).or(Some(Passwd { uid, gid: 0, name: String::new(), home: String::new() })),
        Err(_) if user.is_empty() => None,
        Err(_) => getpw(Some(user), 0),
    }
    .ok_or_else(|| {
        format!("user '{user}' is not in /etc/passwd: write a user that exists in the image, or a numeric uid[:gid]")
    })?;
    let gid = match group {
        None => pw.gid,
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => group_id(g).ok_or_else(|| {
                format!("group '{g}' is not in /etc/group: write a group that exists in the image, or a numeric gid")
            })?,
        },
    };
    let groups = if pw.name.is_empty() { vec![gid] } else { group_list(&pw.name, gid) };
    let home = (!pw.home.is_empty()).then_some(pw.home);
    Ok(Ids { uid: pw.uid, gid, groups, home })
}

/// In the forked child: drop to `ids`. Async-signal-safe, no allocation.
///
/// Raw libc on purpose: this runs between fork and exec (process::spawn's
/// pre_exec), where only async-signal-safe, non-allocating calls may run.
pub fn apply(ids: &Ids) -> std::io::Result<()> {
    // SAFETY: called only in the single-threaded child before exec; geteuid,
    // getegid, setgroups, setgid and setuid allocate nothing (the libc's
    // set*id broadcast reaches only this one thread), and `groups` is a valid
    // slice of `groups.len()` gids.
    unsafe {
        if libc::geteuid() == ids.uid && libc::getegid() == ids.gid && libc::geteuid() != 0 {
            return Ok(()); // already that user: nothing to drop
        }
        if libc::setgroups(ids.groups.len(), ids.groups.as_ptr()) != 0
            || libc::setgid(ids.gid) != 0
            || libc::setuid(ids.uid) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_names_and_numbers() {
        let root = resolve("root").unwrap();
        assert_eq!((root.uid, root.gid), (0, 0));
        assert!(root.groups.contains(&0));
        assert_eq!(root.home.as_deref(), Some("/root"));
        let n = resolve("4242:4343").unwrap();
        assert_eq!((n.uid, n.gid, n.groups.clone()), (4242, 4343, vec![4343]));
        assert_eq!(resolve("4242").unwrap().gid, 0);
        assert_eq!(resolve("root:0").unwrap().gid, 0);
    }

    #[test]
    fn unknown_users_and_groups_are_errors() {
        assert!(resolve("no-such-user-podinit").unwrap_err().contains("no-such-user-podinit"));
        assert!(resolve("root:no-such-group-podinit").unwrap_err().contains("no-such-group-podinit"));
        assert!(resolve("").is_err());
    }
}
