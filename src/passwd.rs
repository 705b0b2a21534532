//! The container's account databases as text: one `/etc/passwd` line by whole name or uid
//! ([`find_passwd_entry`]) and one `/etc/group` line by name ([`find_group_id`]). Pure parsing,
//! shared by the env layer (which reads passwd through a helper exec) and the crun runtime
//! (which reads the files from the root filesystem on the host).

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
    fn groups_by_name() {
        let group = "root:x:0:\nstaff:x:50:a,b\nbroken\n";
        assert_eq!(find_group_id(group, "staff").as_deref(), Some("50"));
        assert_eq!(find_group_id(group, "root").as_deref(), Some("0"));
        assert_eq!(find_group_id(group, "broken"), None);
        assert_eq!(find_group_id(group, "sta"), None);
    }
}
