//! `user = "app"` or `"uid[:gid]"`: resolved when the config loads, applied in
//! the child before exec (supplementary groups, gid, uid in that order), so
//! images need no gosu or su-exec. A uid without a passwd entry gets gid 0,
//! as `docker run --user` does.

use std::ffi::{CStr, CString};

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
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    let cname = name.map(CString::new);
    // SAFETY: every pointer is valid for the call; buf outlives the use of pw.
    let rc = unsafe {
        match &cname {
            Some(Ok(n)) => libc::getpwnam_r(n.as_ptr(), &mut pw, buf.as_mut_ptr(), buf.len(), &mut result),
            Some(Err(_)) => return None,
            None => libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr(), buf.len(), &mut result),
        }
    };
    if rc != 0 || result.is_null() {
        return None;
    }
    // SAFETY: on success pw_name and pw_dir point to NUL-terminated strings in buf.
    let (name, home) = unsafe {
        (
            CStr::from_ptr(pw.pw_name).to_string_lossy().into_owned(),
            CStr::from_ptr(pw.pw_dir).to_string_lossy().into_owned(),
        )
    };
    Some(Passwd { uid: pw.pw_uid, gid: pw.pw_gid, name, home })
}

fn group_id(name: &str) -> Option<u32> {
    let cname = CString::new(name).ok()?;
    let mut gr: libc::group = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut result: *mut libc::group = std::ptr::null_mut();
    // SAFETY: valid pointers for the duration of the call.
    let rc = unsafe { libc::getgrnam_r(cname.as_ptr(), &mut gr, buf.as_mut_ptr(), buf.len(), &mut result) };
    (rc == 0 && !result.is_null()).then_some(gr.gr_gid)
}

fn group_list(name: &str, gid: u32) -> Vec<libc::gid_t> {
    let Ok(cname) = CString::new(name) else {
        return vec![gid];
    };
    let mut n: libc::c_int = 64;
    loop {
        let mut groups = vec![0 as libc::gid_t; n as usize];
        let asked = n;
        // SAFETY: groups has room for n entries; n is updated to the count needed.
        let rc = unsafe { libc::getgrouplist(cname.as_ptr(), gid, groups.as_mut_ptr(), &mut n) };
        if rc >= 0 {
            groups.truncate(n.max(0) as usize);
            return groups;
        }
        if n <= asked {
            n = asked * 2;
        }
        if n > 65_536 {
            return vec![gid];
        }
    }
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
pub fn apply(ids: &Ids) -> std::io::Result<()> {
    // SAFETY: plain syscalls; groups is a valid slice.
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
