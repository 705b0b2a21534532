//! The container's account databases as text: passwd lines, group ids, numeric users.
//!
//! One `/etc/passwd` line by whole name or uid ([`find_passwd_entry`]), one `/etc/group` line by
//! name ([`find_group_id`]), and a user string as numeric ids ([`numeric_ids`]). Pure parsing,
//! shared by the env layer (the user's home and shell), the file calls (the owner of what they
//! write), the crun runtime (`--user` as numbers) and the host's view of a container's processes
//! (their users' names). The files themselves are read by the callers, without an exec where they
//! can be: through `runtime/peek.rs`, from crun's root filesystem, or through `/proc/<pid>/root`.

/// The most of `/etc/passwd` or `/etc/group` read.
pub const ACCOUNTS_LIMIT: u64 = 16 * 1024 * 1024;

/// The fields of one passwd line that dcx uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswdEntry {
    pub name: String,
    pub uid: String,
    pub gid: String,
    pub home: String,
    pub shell: String,
}

impl PasswdEntry {
    /// Parses one `name:password:uid:gid:gecos:home:shell` line; fewer than seven fields is
    /// malformed and gives `None`; fields after the seventh are ignored (as getent does).
    fn parse(line: &str) -> Option<Self> {
        let fields: Vec<&str> = line.split(':').collect();
        let [name, _, uid, gid, _, home, shell, ..] = fields.as_slice() else {
            return None;
        };
        Some(Self {
            name: (*name).to_owned(),
            uid: (*uid).to_owned(),
            gid: (*gid).to_owned(),
            home: (*home).to_owned(),
            shell: (*shell).to_owned(),
        })
    }
}

/// The first passwd line whose whole name or whole uid equals `user`. Comments, blank and
/// malformed lines are skipped; `\r\n` line ends are accepted.
pub fn find_passwd_entry(passwd_text: &str, user: &str) -> Option<PasswdEntry> {
    if user.is_empty() {
        return None;
    }
    passwd_text
        .lines()
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(PasswdEntry::parse)
        .find(|entry| entry.name == user || entry.uid == user)
}

/// Why a user string has no numeric ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdsError {
    UnknownUser(String),
    UnknownGroup(String),
}

/// `user` (`name`, `uid`, `name:group`, `uid:gid`; uid `0` meaning root) as numeric uid and
/// gid, by the passwd and group texts: a name is looked up, a number taken as it is; with no
/// group, the passwd entry's (else 0). `group_text` is asked for only for a group name.
pub fn numeric_ids(
    user: &str,
    passwd_text: &str,
    group_text: impl FnOnce() -> String,
) -> Result<(u32, u32), IdsError> {
    let (name, group) = match user.split_once(':') {
        Some((name, group)) => (name, Some(group)),
        None => (user, None),
    };
    let name = if name == "0" { "root" } else { name };
    let entry = find_passwd_entry(passwd_text, name);
    let uid = match (&entry, name.parse::<u32>()) {
        (Some(entry), _) => entry.uid.parse::<u32>().ok(),
        (None, Ok(uid)) => Some(uid),
        (None, Err(_)) => None,
    }
    .ok_or_else(|| IdsError::UnknownUser(name.to_owned()))?;
    let gid = match group {
        Some(group) => match group.parse::<u32>() {
            Ok(gid) => Some(gid),
            Err(_) => find_group_id(&group_text(), group).and_then(|gid| gid.parse().ok()),
        }
        .ok_or_else(|| IdsError::UnknownGroup(group.to_owned()))?,
        None => entry.and_then(|entry| entry.gid.parse().ok()).unwrap_or(0),
    };
    Ok((uid, gid))
}

/// The gid of the `/etc/group` line named `group` (`name:password:gid:members`).
pub fn find_group_id(group_text: &str, group: &str) -> Option<String> {
    group_text
        .lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .find(|fields| fields.len() >= 3 && fields[0] == group)
        .map(|fields| fields[2].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_resolve_to_numbers() {
        let passwd = "root:x:0:0::/root:/bin/sh\nvscode:x:1000:1001::/home/vscode:/bin/sh\n";
        let group = || "staff:x:50:\n".to_owned();
        assert_eq!(numeric_ids("vscode", passwd, group), Ok((1000, 1001)));
        assert_eq!(numeric_ids("0", passwd, group), Ok((0, 0)));
        assert_eq!(numeric_ids("1234", passwd, group), Ok((1234, 0)));
        assert_eq!(numeric_ids("vscode:staff", passwd, group), Ok((1000, 50)));
        assert_eq!(
            numeric_ids("vscode:7", passwd, || panic!(
                "no group lookup for a number"
            )),
            Ok((1000, 7))
        );
        assert_eq!(
            numeric_ids("bob", passwd, group),
            Err(IdsError::UnknownUser("bob".into()))
        );
        assert_eq!(
            numeric_ids("vscode:wheel", passwd, group),
            Err(IdsError::UnknownGroup("wheel".into()))
        );
    }

    #[test]
    fn groups_by_name() {
        let group = "root:x:0:\nstaff:x:50:a,b\nbroken\n";
        assert_eq!(find_group_id(group, "staff").as_deref(), Some("50"));
        assert_eq!(find_group_id(group, "root").as_deref(), Some("0"));
        assert_eq!(find_group_id(group, "broken"), None);
        assert_eq!(find_group_id(group, "sta"), None);
    }
}
